//go:build duckdb_arrow

package manifests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/app"
	"github.com/stakhanov/stakhanov/config"
)

const (
	deployDir = ".."    // deploy/
	repoRoot  = "../.." // the pipeline's module
	// configEnv names the configuration file when --config is not given; it
	// is the command's variable, not an option (cmd/stakhanov).
	configEnv = "STAKHANOV_CONFIG"
)

// metricKind says how an expression may use a metric.
type metricKind int

const (
	counter metricKind = iota
	gauge
	histogram
)

// metrics the pipeline exports: the dashboard may use these and no other.
var metrics = map[string]metricKind{
	"stakhanov_input_messages_total":           counter,
	"stakhanov_duplicates_total":               counter,
	"stakhanov_late_shifts_total":              counter,
	"stakhanov_rejects_total":                  counter,
	"stakhanov_alerts_total":                   counter,
	"stakhanov_shifts_stored_total":            counter,
	"stakhanov_sink_commits_total":             counter,
	"stakhanov_sink_commit_duration_seconds":   histogram,
	"stakhanov_consumer_lag_messages":          gauge,
	"stakhanov_stream_time_seconds":            gauge,
	"stakhanov_state_bytes":                    gauge,
	"stakhanov_restore_progress_ratio":         gauge,
	"stakhanov_ready":                          gauge,
	"stakhanov_duckdb_damaged":                 gauge,
	"stakhanov_duckdb_corruption_errors_total": counter,
}

// ---------------------------------------------------------------------------
// The command line, from the binary itself

// cli is the stakhanov command built from this checkout: the commands its
// usage lists and each command's flags, from its -h.
var cli struct {
	bin      string
	tmp      string
	commands map[string]bool
	flags    map[string]map[string]bool // command → flag → boolean (takes no value)
}

func TestMain(m *testing.M) {
	// compose-go warns through logrus; the checks report what matters.
	logrus.SetLevel(logrus.ErrorLevel)
	tmp, err := os.MkdirTemp("", "stakhanov-manifests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildCLI(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func buildCLI(tmp string) error {
	cli.tmp = tmp
	cli.bin = filepath.Join(tmp, "stakhanov")
	build := exec.Command("go", "build", "-tags=duckdb_arrow", "-o", cli.bin, "./cmd/stakhanov")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the stakhanov command: %v\n%s", err, out)
	}
	out, err := exec.Command(cli.bin, "-h").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stakhanov -h: %v\n%s", err, out)
	}
	cli.commands = map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+stakhanov\s+([a-z]+)\s`).FindAllSubmatch(out, -1) {
		cli.commands[string(m[1])] = true
	}
	if len(cli.commands) == 0 || !cli.commands["run"] {
		return fmt.Errorf("stakhanov -h lists no commands (or not run):\n%s", out)
	}
	if out, _ := exec.Command(cli.bin, "run", "-h").CombinedOutput(); !bytes.Contains(out, []byte("$"+configEnv)) {
		return fmt.Errorf("stakhanov run -h does not mention $%s any more:\n%s", configEnv, out)
	}
	cli.flags = map[string]map[string]bool{}
	flagLine := regexp.MustCompile(`(?m)^  -([^\s=]+)(?:[ \t]+(\S+))?$`)
	for c := range cli.commands {
		out, err := exec.Command(cli.bin, c, "-h").CombinedOutput()
		if err != nil {
			return fmt.Errorf("stakhanov %s -h: %v\n%s", c, err, out)
		}
		cli.flags[c] = map[string]bool{}
		for _, m := range flagLine.FindAllSubmatch(out, -1) {
			cli.flags[c][string(m[1])] = len(m[2]) == 0
		}
	}
	return nil
}

// commandLine is a parsed stakhanov command line.
type commandLine struct {
	command string
	flags   map[string]string
	rest    []string // arguments after the flags
}

// parseCommandLine checks args (the command and what follows it) against
// the binary's own commands and flags.
func parseCommandLine(args []string) (commandLine, error) {
	var cl commandLine
	if len(args) == 0 {
		return cl, errors.New("no stakhanov command")
	}
	cl.command = args[0]
	known, ok := cli.flags[cl.command]
	if !ok {
		return cl, fmt.Errorf("%q is not a stakhanov command (%s)", cl.command, strings.Join(sortedKeys(cli.commands), ", "))
	}
	cl.flags = map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			cl.rest = args[i+1:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			cl.rest = args[i:]
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		isBool, ok := known[name]
		if !ok {
			return cl, fmt.Errorf("stakhanov %s has no flag -%s", cl.command, name)
		}
		switch {
		case hasVal:
		case isBool:
			val = "true"
		case i+1 < len(args):
			i++
			val = args[i]
		default:
			return cl, fmt.Errorf("stakhanov %s: flag -%s needs a value", cl.command, name)
		}
		cl.flags[name] = val
	}
	return cl, nil
}

// ---------------------------------------------------------------------------
// The pipeline's configuration, through its own registry

// knownEnv maps every variable the run command reads to its option (nil
// for configEnv).
func knownEnv() map[string]*config.Option {
	m := map[string]*config.Option{configEnv: nil}
	for _, o := range app.DefaultRunConfig().Registry().Options() {
		m[o.Env()] = o
	}
	return m
}

// resolved is the configuration a run command line resolves to.
type resolved struct {
	reg *config.Registry
	cfg *app.RunConfig
}

// get returns an option's value as text; a key no option has is a bug in
// the check, so it panics.
func (r resolved) get(key string) string {
	o := r.reg.Lookup(key)
	if o == nil {
		panic("no option " + key)
	}
	return o.Value.String()
}

// resolveRun resolves what `stakhanov run ARGS` would use in a container
// with environment env and the files mounted (container path → content):
// through the registry in this process, as `run` does (flags, the file of
// --config or STAKHANOV_CONFIG, the environment, then validation), and
// through the built command's `config`, which must accept it too.
func resolveRun(args []string, env map[string]string, mounted map[string][]byte) (resolved, error) {
	c := app.DefaultRunConfig()
	reg := c.Registry()
	r := resolved{reg, c}
	fset := flag.NewFlagSet("run", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	cfgPath := fset.String("config", "", "")
	reg.Bind(fset)
	if err := fset.Parse(args); err != nil {
		return r, fmt.Errorf("run %s: %w", strings.Join(args, " "), err)
	}
	if fset.NArg() > 0 {
		return r, fmt.Errorf("run: unexpected argument %q", fset.Arg(0))
	}
	if *cfgPath == "" {
		*cfgPath = env[configEnv]
	}
	host := map[string]string{}
	for p, data := range mounted {
		f, err := os.CreateTemp(cli.tmp, "mounted-*-"+path.Base(p))
		if err != nil {
			return r, err
		}
		if _, err := f.Write(data); err != nil {
			return r, err
		}
		f.Close()
		host[p] = f.Name()
	}
	hostCfg := ""
	if *cfgPath != "" {
		var ok bool
		if hostCfg, ok = host[*cfgPath]; !ok {
			return r, fmt.Errorf("configuration file %s is not mounted in the container", *cfgPath)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	err := reg.Resolve(hostCfg, lookup)
	if err == nil {
		err = c.Run.Validate()
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", *cfgPath, err)
	}

	// The same through the binary, with the container's paths on this host.
	bargs := []string{"config"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--config" || a == "-config":
			bargs = append(bargs, a, host[args[i+1]])
			i++
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			k, v, _ := strings.Cut(a, "=")
			bargs = append(bargs, k+"="+host[v])
		default:
			bargs = append(bargs, a)
		}
	}
	cmd := exec.Command(cli.bin, bargs...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cli.tmp}
	for k, v := range env {
		if k == configEnv {
			v = host[v]
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("stakhanov %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return r, nil
}

// ---------------------------------------------------------------------------
// Files and problems

// files are the deployment files by their path under deploy/.
type files map[string][]byte

// readDeploy reads the deployment files: everything under deploy/ but this
// test's module and the development broker.
func readDeploy(t *testing.T) files {
	t.Helper()
	out := files{}
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(deployDir, p)
		if d.IsDir() {
			if rel == "manifests" || rel == "kafka" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".json", "":
		default:
			return nil
		}
		data, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

func report(t *testing.T, p problems) {
	t.Helper()
	for _, s := range p {
		t.Error(s)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// isLoopback: an address only this host (or pod, or container) reaches.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// port returns the port of a host:port.
func port(addr string) (host string, n int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err = strconv.Atoi(p)
	return host, n, err
}

// within: p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// imageName is an image reference without its tag.
func imageName(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

// ---------------------------------------------------------------------------
// Dockerfile

// dockerfile is what the other files rely on in deploy/Dockerfile.
type dockerfile struct {
	from       []string
	entrypoint []string
	cmd        []string
	expose     map[int]bool
	user       string
	volumes    []string
	env        []string
	run        []string
}

func parseDockerfile(data []byte) (dockerfile, error) {
	d := dockerfile{expose: map[int]bool{}}
	// join continuation lines, drop comments
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	jsonArray := func(s string) ([]string, error) {
		var a []string
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts([]byte(s), &a); err != nil {
			return nil, fmt.Errorf("%s: not a JSON array (exec form): %w", s, err)
		}
		return a, nil
	}
	for _, l := range lines {
		instr, args, _ := strings.Cut(l, " ")
		args = strings.TrimSpace(args)
		var err error
		switch strings.ToUpper(instr) {
		case "FROM":
			d.from = append(d.from, strings.Fields(args)[0])
		case "ENTRYPOINT":
			d.entrypoint, err = jsonArray(args)
		case "CMD":
			d.cmd, err = jsonArray(args)
		case "EXPOSE":
			for _, f := range strings.Fields(args) {
				n, perr := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
				if perr != nil {
					err = fmt.Errorf("EXPOSE %s: %w", f, perr)
				}
				d.expose[n] = true
			}
		case "USER":
			d.user = args
		case "VOLUME":
			d.volumes, err = jsonArray(args)
		case "ENV":
			d.env = append(d.env, args)
		case "RUN":
			d.run = append(d.run, args)
		}
		if err != nil {
			return d, err
		}
	}
	return d, nil
}

// uid is the image's user id.
func (d dockerfile) uid() (int64, error) {
	u, _, _ := strings.Cut(d.user, ":")
	return strconv.ParseInt(u, 10, 64)
}

func checkDockerfile(fs files) problems {
	var p problems
	d, err := parseDockerfile(fs["Dockerfile"])
	if err != nil {
		p.add("Dockerfile: %v", err)
		return p
	}
	if len(d.from) < 2 || !strings.HasPrefix(d.from[0], "golang:") {
		p.add("Dockerfile: want a golang build stage and a runtime stage, have FROM %v", d.from)
	}
	build := strings.Join(d.run, "\n")
	for _, want := range []string{"go mod download", "-tags=duckdb_arrow", "-trimpath", "CGO_ENABLED=1", "./cmd/stakhanov"} {
		if !strings.Contains(build, want) {
			p.add("Dockerfile: the build does not use %s", want)
		}
	}
	if !slices.Equal(d.entrypoint, []string{"/stakhanov"}) {
		p.add("Dockerfile: ENTRYPOINT %q, want [\"/stakhanov\"]", d.entrypoint)
	}
	if _, err := parseCommandLine(d.cmd); err != nil {
		p.add("Dockerfile: CMD %q: %v", d.cmd, err)
	}
	for _, port := range []int{9464, 8080, 8815} {
		if !d.expose[port] {
			p.add("Dockerfile: does not EXPOSE %d", port)
		}
	}
	if uid, err := d.uid(); err != nil || uid == 0 {
		p.add("Dockerfile: USER %q: want a numeric non-root uid (Kubernetes' runAsNonRoot checks it)", d.user)
	}
	if !slices.Contains(d.volumes, "/var/lib/stakhanov") {
		p.add("Dockerfile: VOLUME %q: want /var/lib/stakhanov", d.volumes)
	}
	for _, e := range d.env {
		// The environment beats a configuration file: a default baked into
		// the image would silently override the file mounted over it.
		if strings.Contains(e, config.EnvPrefix) {
			p.add("Dockerfile: ENV %s: sets an option for every container", e)
		}
	}
	return p
}

// ---------------------------------------------------------------------------
// The example configuration

func checkExample(fs files) problems {
	var p problems
	const at = "/etc/stakhanov/stakhanov.yaml"
	r, err := resolveRun([]string{"--config", at}, nil, map[string][]byte{at: fs["stakhanov.yaml"]})
	if err != nil {
		p.add("stakhanov.yaml: %v", err)
		return p
	}
	for _, o := range r.reg.Options() {
		if src, _ := o.Source(); src != config.FromFile {
			p.add("stakhanov.yaml: does not set %s (%s)", o.Key, o.Env())
		}
		if o.Secret && o.Value.String() != "" {
			p.add("stakhanov.yaml: holds the secret %s: leave it empty and set %s", o.Key, o.Env())
		}
	}
	return p
}

// ---------------------------------------------------------------------------
// Kubernetes

// decodeStrict decodes a YAML document into obj as the API server does:
// a duplicate, unknown or wrongly cased field is an error. (sigs.k8s.io/yaml's
// UnmarshalStrict goes through encoding/json, which matches field names
// regardless of case.)
func decodeStrict(doc []byte, obj any) error {
	js, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

type k8sObject struct {
	file string
	obj  any
}

type k8sObjects struct {
	all          []k8sObject
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	policies     []*networkingv1.NetworkPolicy
}

func decodeK8s(p *problems, fs files) k8sObjects {
	o := k8sObjects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, name := range sortedKeys(fs) {
		if !strings.HasPrefix(name, "k8s/") || path.Ext(name) != ".yaml" || name == "k8s/kustomization.yaml" {
			continue
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(fs[name])))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				p.add("%s: %v", name, err)
				break
			}
			var probe any
			if err := sigsyaml.Unmarshal(doc, &probe); err != nil {
				p.add("%s: %v", name, err)
				continue
			}
			if probe == nil {
				continue // comments only
			}
			var tm metav1.TypeMeta
			if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
				p.add("%s: %v", name, err)
				continue
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "networking.k8s.io/v1 NetworkPolicy":
				obj = &networkingv1.NetworkPolicy{}
			default:
				p.add("%s: %q %q is not a kind these manifests use", name, tm.APIVersion, tm.Kind)
				continue
			}
			if err := decodeStrict(doc, obj); err != nil {
				p.add("%s: %s: %v", name, tm.Kind, err)
				continue
			}
			o.all = append(o.all, k8sObject{name, obj})
			switch v := obj.(type) {
			case *appsv1.Deployment:
				o.deployments = append(o.deployments, v)
			case *appsv1.StatefulSet:
				o.statefulSets = append(o.statefulSets, v)
			case *corev1.ConfigMap:
				o.configMaps[v.Name] = v
			case *corev1.Secret:
				o.secrets[v.Name] = v
			case *corev1.Service:
				o.services = append(o.services, v)
			case *networkingv1.NetworkPolicy:
				o.policies = append(o.policies, v)
			}
		}
	}
	return o
}

// kustomization is the part of kustomize's Kustomization these manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// examples are manifests deliberately left out of kustomization.yaml.
var examples = map[string]bool{"secret.example.yaml": true}

func checkKustomization(p *problems, fs files, image string) {
	var k kustomization
	if err := decodeStrict(fs["k8s/kustomization.yaml"], &k); err != nil {
		p.add("k8s/kustomization.yaml: %v", err)
		return
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		p.add("k8s/kustomization.yaml: %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	var want []string
	for name := range fs {
		if dir, base := path.Split(name); dir == "k8s/" && path.Ext(base) == ".yaml" && base != "kustomization.yaml" && !examples[base] {
			want = append(want, base)
		}
	}
	slices.Sort(want)
	have := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(have, want) {
		p.add("k8s/kustomization.yaml: resources %v, want every manifest but the examples: %v", have, want)
	}
	for _, img := range k.Images {
		if img.Name != imageName(image) {
			p.add("k8s/kustomization.yaml: images: %q is not the workloads' image %q", img.Name, imageName(image))
		}
		if img.NewName == "" && img.NewTag == "" {
			p.add("k8s/kustomization.yaml: images: %q changes nothing", img.Name)
		}
	}
}

// workload is what a Deployment and a StatefulSet share.
type workload struct {
	where     string // file: kind name
	component string // app.kubernetes.io/component
	role      string // the pipeline.role it must run
	meta      metav1.ObjectMeta
	selector  *metav1.LabelSelector
	template  corev1.PodTemplateSpec
	claims    []corev1.PersistentVolumeClaim
}

const (
	nameLabel      = "app.kubernetes.io/name"
	componentLabel = "app.kubernetes.io/component"
)

func checkKubernetes(fs files) problems {
	var p problems
	objs := decodeK8s(&p, fs)
	image := ""
	if proj, err := loadCompose(fs); err != nil {
		p.add("docker-compose.yml: %v", err)
	} else if svc, ok := pipelineService(proj); ok {
		image = svc.Image
	}
	checkKustomization(&p, fs, image)
	d, err := parseDockerfile(fs["Dockerfile"])
	if err != nil {
		p.add("Dockerfile: %v", err)
	}

	for _, o := range objs.all {
		meta := o.obj.(metav1.Object)
		if meta.GetLabels()[nameLabel] != "stakhanov" {
			p.add("%s: %s has no label %s: stakhanov", o.file, meta.GetName(), nameLabel)
		}
	}
	for _, cm := range objs.configMaps {
		for k, data := range cm.Data {
			if strings.HasSuffix(k, ".yaml") {
				checkNoSecrets(&p, fmt.Sprintf("k8s: ConfigMap %s: %s", cm.Name, k), []byte(data))
			}
		}
	}
	for _, s := range objs.secrets {
		for k, v := range s.StringData {
			if !strings.Contains(strings.ToUpper(v), "REPLACE") {
				p.add("k8s: Secret %s: %s holds %q, not a placeholder", s.Name, k, v)
			}
		}
		if len(s.Data) > 0 {
			p.add("k8s: Secret %s: data would hold a real value; use stringData placeholders", s.Name)
		}
	}

	var ws []workload
	for _, dep := range objs.deployments {
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 1 {
			p.add("k8s: Deployment %s: replicas not set", dep.Name)
		}
		ws = append(ws, workload{where: "Deployment " + dep.Name, component: "processor", role: "process",
			meta: dep.ObjectMeta, selector: dep.Spec.Selector, template: dep.Spec.Template})
	}
	for _, sts := range objs.statefulSets {
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
			p.add("k8s: StatefulSet %s: replicas must be 1: one writer per DuckDB file", sts.Name)
		}
		if !slices.ContainsFunc(objs.services, func(s *corev1.Service) bool { return s.Name == sts.Spec.ServiceName }) {
			p.add("k8s: StatefulSet %s: serviceName %q is no Service of these manifests", sts.Name, sts.Spec.ServiceName)
		}
		ws = append(ws, workload{where: "StatefulSet " + sts.Name, component: "sink", role: "sink",
			meta: sts.ObjectMeta, selector: sts.Spec.Selector, template: sts.Spec.Template, claims: sts.Spec.VolumeClaimTemplates})
	}
	if len(objs.deployments) == 0 || len(objs.statefulSets) == 0 {
		p.add("k8s: want a Deployment of processors and a StatefulSet for the sink, have %d and %d", len(objs.deployments), len(objs.statefulSets))
	}

	metricsPorts := map[int]bool{}
	var sinkSQL []sqlPort
	for _, w := range ws {
		r, ok := checkWorkload(&p, objs, w, image, d)
		if !ok {
			continue
		}
		_, mp, _ := port(r.get("endpoints.metrics_addr"))
		metricsPorts[mp] = true
		if w.role == "sink" {
			sinkSQL = sqlPorts(r)
			for _, sp := range sinkSQL {
				checkSQLService(&p, objs, w, r, sp)
			}
		}
	}
	checkMetricsService(&p, objs, ws, metricsPorts)
	checkNetworkPolicies(&p, objs, ws, sinkSQL)
	return p
}

// checkWorkload checks one workload and returns the configuration its
// container resolves to.
func checkWorkload(p *problems, objs k8sObjects, w workload, image string, d dockerfile) (resolved, bool) {
	where := "k8s: " + w.where
	if w.meta.Labels[componentLabel] != w.component || w.template.Labels[componentLabel] != w.component {
		p.add("%s: want label %s: %s on it and its pods", where, componentLabel, w.component)
	}
	if w.template.Labels[nameLabel] != "stakhanov" {
		p.add("%s: pods lack label %s: stakhanov", where, nameLabel)
	}
	if w.selector == nil || w.selector.MatchLabels[componentLabel] != w.component {
		p.add("%s: the selector must pick %s=%s", where, componentLabel, w.component)
	} else {
		for k, v := range w.selector.MatchLabels {
			if w.template.Labels[k] != v {
				p.add("%s: selector %s=%s does not match its pods' labels", where, k, v)
			}
		}
	}
	spec := w.template.Spec
	if len(spec.Containers) != 1 {
		p.add("%s: want one container, have %d", where, len(spec.Containers))
		return resolved{}, false
	}
	c := spec.Containers[0]
	where += " container " + c.Name
	if c.Image != image {
		p.add("%s: image %q, docker-compose.yml builds %q", where, c.Image, image)
	}
	if len(c.Command) > 0 {
		p.add("%s: command %q replaces the image's entrypoint; give args only", where, c.Command)
	}

	// security: the image's user, nothing writable but the volumes
	sc, csc := spec.SecurityContext, c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		p.add("%s: the pod must set runAsNonRoot", where)
	}
	uid, _ := d.uid()
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid {
		p.add("%s: runAsUser must be the image's user %d", where, uid)
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		p.add("%s: readOnlyRootFilesystem must be true", where)
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		p.add("%s: allowPrivilegeEscalation must be false", where)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
		p.add("%s: no memory request", where)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		p.add("%s: no memory limit", where)
	}

	// the command line
	cl, err := parseCommandLine(c.Args)
	if err != nil {
		p.add("%s: args %q: %v", where, c.Args, err)
		return resolved{}, false
	}
	if cl.command != "run" {
		p.add("%s: runs %q, want run", where, cl.command)
		return resolved{}, false
	}

	// the environment
	known := knownEnv()
	env := map[string]string{}
	for _, e := range c.Env {
		o, isKnown := known[e.Name]
		if strings.HasPrefix(e.Name, config.EnvPrefix) && !isKnown {
			p.add("%s: env %s is no option of stakhanov run", where, e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			if o != nil && o.Secret {
				p.add("%s: env %s holds a secret in the manifest: take it from a Secret", where, e.Name)
			}
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := objs.secrets[ref.Name]
			if !ok {
				p.add("%s: env %s: no Secret %s among the manifests (secret.example.yaml shows its shape)", where, e.Name, ref.Name)
				continue
			}
			v, ok := s.StringData[ref.Key]
			if !ok {
				p.add("%s: env %s: Secret %s has no key %s", where, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := objs.configMaps[ref.Name]
			if !ok || cm.Data[ref.Key] == "" {
				p.add("%s: env %s: no ConfigMap %s with key %s", where, e.Name, ref.Name, ref.Key)
			}
			if cm != nil {
				env[e.Name] = cm.Data[ref.Key]
			}
		default:
			p.add("%s: env %s: only values, Secrets and ConfigMaps are checked", where, e.Name)
		}
	}

	// the files mounted from ConfigMaps, and the writable volumes
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	claims := map[string]bool{}
	for _, pvc := range w.claims {
		claims[pvc.Name] = true
	}
	mounted := map[string][]byte{}
	secretFiles := map[string]secretFile{}
	var dataMounts []string
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		switch {
		case claims[m.Name]:
			dataMounts = append(dataMounts, m.MountPath)
		case !ok:
			p.add("%s: volumeMount %s names no volume", where, m.Name)
		case v.Secret != nil:
			s, ok := objs.secrets[v.Secret.SecretName]
			if !ok {
				p.add("%s: volume %s: no Secret %s among the manifests (secret.example.yaml shows their shapes)", where, m.Name, v.Secret.SecretName)
				continue
			}
			if m.SubPath != "" {
				p.add("%s: volumeMount %s: a subPath mount of a Secret is never updated: mount the whole volume", where, m.Name)
			}
			if mode := v.Secret.DefaultMode; mode != nil && !readableBy(*mode, spec.SecurityContext) {
				p.add("%s: volume %s: defaultMode %#o: the pod's user (runAsUser, fsGroup) cannot read its files", where, m.Name, *mode)
			}
			if len(v.Secret.Items) == 0 {
				for k := range s.StringData {
					secretFiles[path.Join(m.MountPath, k)] = secretFile{s, k}
				}
			}
			for _, it := range v.Secret.Items {
				secretFiles[path.Join(m.MountPath, it.Path)] = secretFile{s, it.Key}
			}
		case v.ConfigMap != nil:
			cm, ok := objs.configMaps[v.ConfigMap.Name]
			if !ok {
				p.add("%s: volume %s: no ConfigMap %s", where, m.Name, v.ConfigMap.Name)
				continue
			}
			if len(v.ConfigMap.Items) == 0 {
				for k, data := range cm.Data {
					mounted[path.Join(m.MountPath, k)] = []byte(data)
				}
			}
			for _, it := range v.ConfigMap.Items {
				mounted[path.Join(m.MountPath, it.Path)] = []byte(cm.Data[it.Key])
			}
		}
	}

	r, err := resolveRun(cl.flags2args(), env, mounted)
	if err != nil {
		p.add("%s: %v", where, err)
		return r, false
	}
	if role := r.get("pipeline.role"); role != w.role {
		p.add("%s: runs role %s, want %s (STAKHANOV_PIPELINE_ROLE)", where, role, w.role)
	}

	// probes on the metrics address
	mhost, mport, err := port(r.get("endpoints.metrics_addr"))
	if err != nil {
		p.add("%s: endpoints.metrics_addr: %v", where, err)
		return r, false
	}
	if isLoopback(mhost) {
		p.add("%s: endpoints.metrics_addr %s: the kubelet's probes and Prometheus cannot reach loopback", where, r.get("endpoints.metrics_addr"))
	}
	containerPort := func(ip intstr.IntOrString) int {
		if ip.Type == intstr.Int {
			return ip.IntValue()
		}
		for _, cp := range c.Ports {
			if cp.Name == ip.StrVal {
				return int(cp.ContainerPort)
			}
		}
		return -1
	}
	if containerPort(intstr.FromString("metrics")) != mport {
		p.add("%s: container port \"metrics\" is not %d, the metrics address's", where, mport)
	}
	for _, pr := range []struct {
		name, path string
		probe      *corev1.Probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			p.add("%s: no HTTP %s", where, pr.name)
		case pr.probe.HTTPGet.Path != pr.path:
			p.add("%s: %s asks %s, want %s", where, pr.name, pr.probe.HTTPGet.Path, pr.path)
		case containerPort(pr.probe.HTTPGet.Port) != mport:
			p.add("%s: %s on port %s, the metrics address is on %d", where, pr.name, pr.probe.HTTPGet.Port.String(), mport)
		}
	}

	// SIGTERM: the final flush must fit in the grace period
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	if st := r.cfg.Run.Ingest.ShutdownTimeout; float64(grace) <= st.Seconds() {
		p.add("%s: terminationGracePeriodSeconds %d is not above pipeline.shutdown_timeout %v", where, grace, st)
	}

	if w.role == "sink" {
		qhost, qport, err := port(r.get("endpoints.query_addr"))
		switch {
		case err != nil:
			p.add("%s: endpoints.query_addr: %v", where, err)
		case isLoopback(qhost):
			p.add("%s: endpoints.query_addr %s: no Service reaches loopback", where, r.get("endpoints.query_addr"))
		case containerPort(intstr.FromString("query")) != qport:
			p.add("%s: container port \"query\" is not %d, the query address's", where, qport)
		}
		// The Flight SQL server: exposed on a port named flight, or on
		// loopback (or off) and not exposed at all.
		switch fa := r.get("endpoints.flight_addr"); {
		case fa == "" || fa == app.QueryAddrOff:
			if containerPort(intstr.FromString("flight")) != -1 {
				p.add("%s: container port \"flight\", but endpoints.flight_addr is off", where)
			}
		default:
			fhost, fport, err := port(fa)
			switch {
			case err != nil:
				p.add("%s: endpoints.flight_addr: %v", where, err)
			case isLoopback(fhost):
				if containerPort(intstr.FromString("flight")) != -1 {
					p.add("%s: container port \"flight\", but endpoints.flight_addr %s is loopback: nothing answers there", where, fa)
				}
			case containerPort(intstr.FromString("flight")) != fport:
				p.add("%s: container port \"flight\" is not %d, the Flight SQL address's", where, fport)
			}
		}
		db := r.get("duckdb.path")
		snaps := r.get("snapshots.dir")
		if snaps == "" {
			snaps = db + ".snapshot"
		}
		for _, f := range []string{db, snaps} {
			if !slices.ContainsFunc(dataMounts, func(m string) bool { return within(f, m) }) {
				p.add("%s: %s is on no volume of its volumeClaimTemplates (%v): the root filesystem is read-only and lost with the pod", where, f, dataMounts)
			}
		}
		checkQueryCredentials(p, where, c, r, secretFiles)
	}
	return r, true
}

// secretFile is a file a Secret volume puts in a container: its Secret
// and key.
type secretFile struct {
	secret *corev1.Secret
	key    string
}

// readableBy: a Secret volume's files, of mode, owned by root and the
// pod's fsGroup, are readable by the pod's user.
func readableBy(mode int32, sc *corev1.PodSecurityContext) bool {
	if mode&0o004 != 0 {
		return true
	}
	if sc == nil || sc.FSGroup == nil {
		return sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 && mode&0o400 != 0
	}
	return mode&0o040 != 0
}

// checkQueryCredentials: the sink's query endpoint takes its token from a
// Secret and serves TLS with a certificate from a kubernetes.io/tls
// Secret, each mounted where the configuration says.
func checkQueryCredentials(p *problems, where string, c corev1.Container, r resolved, files map[string]secretFile) {
	tokenFile := r.get("endpoints.query_token_file")
	fromEnv := slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == config.EnvName("endpoints.query_token") && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	})
	switch f, ok := files[tokenFile]; {
	case tokenFile == "" && !fromEnv:
		p.add("%s: the query endpoint's token comes from no Secret: set endpoints.query_token_file to a file of a mounted Secret", where)
	case tokenFile != "" && !ok:
		p.add("%s: endpoints.query_token_file %s is no file of a mounted Secret (%v)", where, tokenFile, sortedKeys(files))
	case ok && f.secret.Type == corev1.SecretTypeTLS:
		p.add("%s: endpoints.query_token_file %s is a key of the TLS Secret %s", where, tokenFile, f.secret.Name)
	}
	cert, key := r.get("endpoints.query_tls.cert_file"), r.get("endpoints.query_tls.key_file")
	if cert == "" {
		p.add("%s: the query endpoint serves no TLS (endpoints.query_tls.cert_file): its token and results would cross the network in the clear", where)
		return
	}
	cf, cok := files[cert]
	kf, kok := files[key]
	switch {
	case !cok || !kok:
		p.add("%s: endpoints.query_tls.cert_file %s and key_file %s must be files of a mounted Secret (%v)", where, cert, key, sortedKeys(files))
	case cf.secret != kf.secret:
		p.add("%s: the query endpoint's certificate and key come from two Secrets, %s and %s", where, cf.secret.Name, kf.secret.Name)
	case cf.secret.Type != corev1.SecretTypeTLS:
		p.add("%s: Secret %s is of type %q, want %s (what cert-manager and kubectl create secret tls write)", where, cf.secret.Name, cf.secret.Type, corev1.SecretTypeTLS)
	case cf.key != corev1.TLSCertKey || kf.key != corev1.TLSPrivateKeyKey:
		p.add("%s: the certificate is key %s and the key is key %s of Secret %s, want %s and %s", where, cf.key, kf.key, cf.secret.Name, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
}

// checkNetworkPolicies: every workload's pods are isolated for ingress;
// what reaches them names its ports, the metrics port only from
// Prometheus' pods, the sink's SQL ports (sinkSQL: query, and flight when
// the Flight SQL server is exposed) only from labelled pods of the
// namespace; nothing blocks their outgoing traffic (Kafka).
func checkNetworkPolicies(p *problems, objs k8sObjects, ws []workload, sinkSQL []sqlPort) {
	if len(objs.policies) == 0 {
		p.add("k8s: no NetworkPolicy: any pod of the cluster reaches the query and metrics ports")
		return
	}
	for _, w := range ws {
		c := w.template.Spec.Containers
		if len(c) != 1 {
			continue
		}
		ports := map[string]int{}
		for _, cp := range c[0].Ports {
			ports[cp.Name] = int(cp.ContainerPort)
		}
		portName := func(pp networkingv1.NetworkPolicyPort) string {
			if pp.Port == nil {
				return "every port"
			}
			if pp.Port.Type == intstr.String {
				if _, ok := ports[pp.Port.StrVal]; ok {
					return pp.Port.StrVal
				}
				return "unknown port " + pp.Port.StrVal
			}
			for name, n := range ports {
				if n == pp.Port.IntValue() && pp.EndPort == nil {
					return name
				}
			}
			return "port " + pp.Port.String()
		}
		where := "k8s: " + w.where
		isolated, metricsIn, sqlIn := false, false, map[string]bool{}
		for _, np := range objs.policies {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				p.add("k8s: NetworkPolicy %s: %v", np.Name, err)
				continue
			}
			if !sel.Matches(labels.Set(w.template.Labels)) {
				continue
			}
			pw := fmt.Sprintf("%s: NetworkPolicy %s", where, np.Name)
			types := np.Spec.PolicyTypes
			if len(types) == 0 {
				types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			}
			if slices.Contains(types, networkingv1.PolicyTypeIngress) {
				isolated = true
			}
			if slices.Contains(types, networkingv1.PolicyTypeEgress) && len(np.Spec.Egress) == 0 {
				p.add("%s: isolates egress and allows none: the pods could not reach Kafka", pw)
			}
			for i, rule := range np.Spec.Ingress {
				rw := fmt.Sprintf("%s: ingress rule %d", pw, i+1)
				if len(rule.Ports) == 0 {
					p.add("%s names no ports: it opens every port", rw)
				}
				if len(rule.From) == 0 {
					p.add("%s has no from: it admits anyone", rw)
				}
				for _, pp := range rule.Ports {
					name := portName(pp)
					switch name {
					case "metrics":
						metricsIn = true
						for _, peer := range rule.From {
							if peer.IPBlock != nil || peer.PodSelector == nil || len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0 ||
								(peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels)+len(peer.NamespaceSelector.MatchExpressions) == 0) {
								p.add("%s: the metrics port admits more than Prometheus' pods (a podSelector with labels, in its namespace)", rw)
							}
						}
					case "query", "flight":
						sqlIn[name] = true
						for _, peer := range rule.From {
							if peer.IPBlock != nil || peer.NamespaceSelector != nil {
								p.add("%s: the %s port admits pods of other namespaces or addresses outside the cluster", rw, name)
							} else if peer.PodSelector == nil || len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0 {
								p.add("%s: the %s port admits every pod of the namespace: select the consumers by a label", rw, name)
							}
						}
					default:
						p.add("%s opens %s, which the %s does not serve as metrics, query or flight", rw, name, w.where)
					}
				}
			}
		}
		switch {
		case !isolated:
			p.add("%s: no NetworkPolicy isolates its pods for ingress", where)
		case !metricsIn:
			p.add("%s: no NetworkPolicy lets Prometheus reach its metrics port", where)
		}
		if w.role == "sink" {
			for _, sp := range sinkSQL {
				if !sqlIn[sp.name] {
					p.add("%s: no NetworkPolicy lets the namespace's consumers reach its %s port", where, sp.name)
				}
			}
		}
	}
}

// flags2args turns the parsed flags back into arguments for `run`.
func (cl commandLine) flags2args() []string {
	var a []string
	for _, k := range sortedKeys(cl.flags) {
		a = append(a, "--"+k+"="+cl.flags[k])
	}
	return append(a, cl.rest...)
}

// checkNoSecrets: a configuration file must not hold a secret option.
func checkNoSecrets(p *problems, where string, data []byte) {
	c := app.DefaultRunConfig()
	reg := c.Registry()
	if err := reg.LoadYAML(data, where); err != nil {
		return // reported where the file is resolved
	}
	for _, o := range reg.Options() {
		if src, _ := o.Source(); o.Secret && src == config.FromFile && o.Value.String() != "" {
			p.add("%s: holds the secret %s: set %s from a Secret", where, o.Key, o.Env())
		}
	}
}

// selects: the Service selector picks pods with these labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkMetricsService(p *problems, objs k8sObjects, ws []workload, metricsPorts map[int]bool) {
	found := false
	for _, s := range objs.services {
		for _, sp := range s.Spec.Ports {
			if sp.Name != "metrics" {
				continue
			}
			found = true
			if !metricsPorts[int(sp.Port)] {
				p.add("k8s: Service %s: port metrics is %d, the workloads serve metrics on %v", s.Name, sp.Port, sortedInts(metricsPorts))
			}
			if sp.TargetPort.String() != "metrics" && !metricsPorts[sp.TargetPort.IntValue()] {
				p.add("k8s: Service %s: targetPort %s is not the metrics port", s.Name, sp.TargetPort.String())
			}
			for _, w := range ws {
				if !selects(s.Spec.Selector, w.template.Labels) {
					p.add("k8s: Service %s does not select the %s's pods", s.Name, w.where)
				}
			}
		}
	}
	if !found {
		p.add("k8s: no Service has a port named metrics")
	}
}

// sqlPort is a port the sink serves SQL on: its container port's name
// and the option of its address.
type sqlPort struct{ name, key string }

// sqlPorts are the ports the sink's configuration serves SQL on beyond
// loopback: the query endpoint's always (checkWorkload refuses it on
// loopback), the Flight SQL server's when exposed.
func sqlPorts(r resolved) []sqlPort {
	ps := []sqlPort{{"query", "endpoints.query_addr"}}
	if fa := r.get("endpoints.flight_addr"); fa != "" && fa != app.QueryAddrOff {
		if host, _, err := port(fa); err == nil && !isLoopback(host) {
			ps = append(ps, sqlPort{"flight", "endpoints.flight_addr"})
		}
	}
	return ps
}

// checkSQLService: a Service of the sink only, inside the cluster, reaches
// the SQL port sp.
func checkSQLService(p *problems, objs k8sObjects, sink workload, r resolved, sp sqlPort) {
	_, n, _ := port(r.get(sp.key))
	for _, s := range objs.services {
		for _, svp := range s.Spec.Ports {
			if svp.TargetPort.String() != sp.name && svp.TargetPort.IntValue() != n {
				continue
			}
			if !selects(s.Spec.Selector, sink.template.Labels) {
				p.add("k8s: Service %s: port %s does not select the sink", s.Name, svp.Name)
			}
			if s.Spec.Selector[componentLabel] != "sink" {
				p.add("k8s: Service %s: the %s port must select the sink only (%s: sink)", s.Name, sp.name, componentLabel)
			}
			if int(svp.Port) != n {
				p.add("k8s: Service %s: port %d, the sink serves SQL (%s) on %d", s.Name, svp.Port, sp.key, n)
			}
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort {
				p.add("k8s: Service %s: the sink's SQL must stay inside the cluster", s.Name)
			}
			return
		}
	}
	p.add("k8s: no Service for the sink's %s port %d (%s)", sp.name, n, sp.key)
}

func sortedInts(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ---------------------------------------------------------------------------
// Compose

// loadCompose loads docker-compose.yml as `docker compose` does: against
// the Compose Specification's JSON schema, with paths resolved.
func loadCompose(fs files) (*composetypes.Project, error) {
	abs, err := filepath.Abs(deployDir)
	if err != nil {
		return nil, err
	}
	details := composetypes.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []composetypes.ConfigFile{{Filename: filepath.Join(abs, "docker-compose.yml"), Content: fs["docker-compose.yml"]}},
		Environment: composetypes.Mapping{},
	}
	return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) { o.ResolvePaths = true })
}

// pipelineService is the service that builds the image from deploy/Dockerfile.
func pipelineService(proj *composetypes.Project) (composetypes.ServiceConfig, bool) {
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		if s.Build != nil && filepath.ToSlash(s.Build.Dockerfile) == "deploy/Dockerfile" {
			return s, true
		}
	}
	return composetypes.ServiceConfig{}, false
}

func checkCompose(fs files) problems {
	var p problems
	var top map[string]any
	if err := sigsyaml.Unmarshal(fs["docker-compose.yml"], &top); err != nil {
		p.add("docker-compose.yml: %v", err)
		return p
	}
	if _, ok := top["version"]; ok {
		p.add("docker-compose.yml: the Compose Specification has no version key")
	}
	proj, err := loadCompose(fs)
	if err != nil {
		p.add("docker-compose.yml: %v", err)
		return p
	}
	d, err := parseDockerfile(fs["Dockerfile"])
	if err != nil {
		p.add("Dockerfile: %v", err)
	}
	absDeploy, _ := filepath.Abs(deployDir)
	absRoot, _ := filepath.Abs(repoRoot)

	pipe, ok := pipelineService(proj)
	if !ok {
		p.add("docker-compose.yml: no service builds deploy/Dockerfile")
		return p
	}
	if pipe.Build.Context != absRoot {
		p.add("docker-compose.yml: %s: build context %s, want the repository root %s", pipe.Name, pipe.Build.Context, absRoot)
	}
	if pipe.Image == "" {
		p.add("docker-compose.yml: %s: no image name for the image it builds", pipe.Name)
	}

	known := knownEnv()
	var pipeRun resolved
	var haveRun bool
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		where := "docker-compose.yml: " + name
		for dep, cond := range s.DependsOn {
			if cond.Condition == composetypes.ServiceConditionHealthy {
				if h := proj.Services[dep].HealthCheck; h == nil || h.Disable || len(h.Test) == 0 {
					p.add("%s: waits for %s to be healthy, which has no healthcheck", where, dep)
				}
			}
		}
		if s.Image != pipe.Image {
			// other images: their STAKHANOV_ variables must be ones the
			// notebooks read
			for k := range s.Environment {
				if strings.HasPrefix(k, config.EnvPrefix) && !notebooksRead(k) {
					p.add("%s: %s is read by nothing in notebooks/", where, k)
				}
			}
			continue
		}
		if s.Build == nil && s.PullPolicy != composetypes.PullPolicyNever {
			p.add("%s: uses the image %s builds, but may pull a same-named image from a registry (pull_policy: never)", where, pipe.Name)
		}
		if len(s.Entrypoint) > 0 && !slices.Equal(s.Entrypoint, d.entrypoint) {
			p.add("%s: entrypoint %q replaces the image's", where, s.Entrypoint)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			o, isKnown := known[k]
			if strings.HasPrefix(k, config.EnvPrefix) && !isKnown {
				p.add("%s: %s is no option of stakhanov run", where, k)
			}
			if v == nil {
				p.add("%s: %s takes its value from the host's environment", where, k)
				continue
			}
			if o != nil && o.Secret && *v != "" {
				p.add("%s: %s holds a secret in the file", where, k)
			}
			env[k] = *v
		}
		args := []string(s.Command)
		if len(args) == 0 {
			args = d.cmd
		}
		cl, err := parseCommandLine(args)
		if err != nil {
			p.add("%s: command %q: %v", where, args, err)
			continue
		}
		if h := s.HealthCheck; h != nil && !h.Disable && len(h.Test) > 0 {
			checkImageHealthcheck(&p, where, h.Test, d)
		}
		if cl.command != "run" {
			continue
		}
		mounted := map[string][]byte{}
		for _, v := range s.Volumes {
			if v.Type != composetypes.VolumeTypeBind {
				continue
			}
			var data []byte
			if rel, err := filepath.Rel(absDeploy, v.Source); err == nil && fs[filepath.ToSlash(rel)] != nil {
				data = fs[filepath.ToSlash(rel)]
			} else if st, err := os.Stat(v.Source); err == nil && st.Mode().IsRegular() {
				data, _ = os.ReadFile(v.Source)
			}
			if data != nil {
				mounted[v.Target] = data
				if strings.HasSuffix(v.Target, ".yaml") {
					checkNoSecrets(&p, where+": "+v.Target, data)
				}
			}
		}
		r, err := resolveRun(cl.flags2args(), env, mounted)
		if err != nil {
			p.add("%s: %v", where, err)
			continue
		}
		if name == pipe.Name {
			pipeRun, haveRun = r, true
			checkPipelineService(&p, where, proj, s, r, d)
		}
	}
	if !haveRun {
		p.add("docker-compose.yml: %s does not run the pipeline", pipe.Name)
		return p
	}
	checkComposeToken(&p, proj, pipe, pipeRun)

	// the simulator feeds the pipeline's input on the pipeline's brokers
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		if s.Image != pipe.Image || len(s.Command) == 0 || s.Command[0] != "simulate" {
			continue
		}
		cl, err := parseCommandLine(s.Command)
		if err != nil {
			continue // reported above
		}
		if cl.flags["brokers"] != pipeRun.get("kafka.brokers") {
			p.add("docker-compose.yml: %s: --brokers %q, the pipeline reads %q", name, cl.flags["brokers"], pipeRun.get("kafka.brokers"))
		}
		if cl.flags["topic"] != pipeRun.get("kafka.input") {
			p.add("docker-compose.yml: %s: --topic %q, the pipeline reads %q", name, cl.flags["topic"], pipeRun.get("kafka.input"))
		}
	}

	// the broker advertises the address the pipeline dials
	kafkaFound := false
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		if !strings.HasPrefix(s.Image, "apache/kafka:") {
			continue
		}
		kafkaFound = true
		adv := s.Environment["KAFKA_ADVERTISED_LISTENERS"]
		for _, b := range strings.Split(pipeRun.get("kafka.brokers"), ",") {
			if adv == nil || !strings.Contains(*adv, "://"+b) {
				p.add("docker-compose.yml: %s: KAFKA_ADVERTISED_LISTENERS does not advertise %s, which the pipeline dials", name, b)
			}
		}
	}
	if !kafkaFound {
		p.add("docker-compose.yml: no apache/kafka service")
	}

	// analysts read the snapshots, read-only, where the notebooks look
	var dataVolume, dataTarget string
	for _, v := range pipe.Volumes {
		if v.Type == composetypes.VolumeTypeVolume && within(pipeRun.get("duckdb.path"), v.Target) {
			dataVolume, dataTarget = v.Source, v.Target
		}
	}
	snaps := pipeRun.get("snapshots.dir")
	if snaps == "" {
		snaps = pipeRun.get("duckdb.path") + ".snapshot"
	}
	readers := 0
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		if name == pipe.Name {
			continue
		}
		for _, v := range s.Volumes {
			if v.Type != composetypes.VolumeTypeVolume || v.Source != dataVolume || dataVolume == "" {
				continue
			}
			readers++
			if !v.ReadOnly {
				p.add("docker-compose.yml: %s mounts the sink's volume %s writable", name, dataVolume)
			}
			rel, _ := filepath.Rel(dataTarget, snaps)
			want := path.Join(v.Target, rel, analytics.SnapshotFile)
			if db := s.Environment["STAKHANOV_DUCKDB"]; db != nil && *db != want {
				p.add("docker-compose.yml: %s: STAKHANOV_DUCKDB=%s, the snapshot is at %s", name, *db, want)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == composetypes.VolumeTypeBind && filepath.Base(v.Source) == "notebooks" {
				if _, err := os.Stat(filepath.Join(v.Source, "requirements.txt")); err != nil {
					p.add("docker-compose.yml: %s mounts %s, which has no requirements.txt", name, v.Source)
				}
			}
		}
	}
	if readers == 0 {
		p.add("docker-compose.yml: no service reads the snapshots on %s's volume", pipe.Name)
	}
	return p
}

// checkComposeToken: the SQL endpoint's token file is on a named volume
// that a one-shot `stakhanov token --out` service writes before the
// pipeline starts, the only service that mounts it writable.
func checkComposeToken(p *problems, proj *composetypes.Project, pipe composetypes.ServiceConfig, r resolved) {
	where := "docker-compose.yml: " + pipe.Name
	file := r.get("endpoints.query_token_file")
	if file == "" {
		p.add("%s: the SQL endpoint's token is no file (endpoints.query_token_file) a service writes", where)
		return
	}
	vol, rel := "", ""
	for _, v := range pipe.Volumes {
		if v.Type == composetypes.VolumeTypeVolume && within(file, v.Target) {
			vol, rel = v.Source, strings.TrimPrefix(file, v.Target)
			if !v.ReadOnly {
				p.add("%s mounts the token's volume %s writable", where, vol)
			}
		}
	}
	if vol == "" {
		p.add("%s: the token file %s is on no named volume", where, file)
		return
	}
	writers := 0
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		if name == pipe.Name {
			continue
		}
		for _, v := range s.Volumes {
			if v.Type != composetypes.VolumeTypeVolume || v.Source != vol || v.ReadOnly {
				continue
			}
			cl, err := parseCommandLine(s.Command)
			if err != nil || cl.command != "token" || s.Image != pipe.Image {
				p.add("docker-compose.yml: %s mounts the token's volume %s writable, and is not stakhanov token", name, vol)
				continue
			}
			if out := cl.flags["out"]; !within(out, v.Target) || strings.TrimPrefix(out, v.Target) != rel {
				p.add("docker-compose.yml: %s writes %s, the pipeline reads %s", name, out, file)
				continue
			}
			writers++
			if dep, ok := pipe.DependsOn[name]; !ok || dep.Condition != composetypes.ServiceConditionCompletedSuccessfully {
				p.add("%s: does not wait for %s to write the token (depends_on condition %s)", where, name, composetypes.ServiceConditionCompletedSuccessfully)
			}
		}
	}
	if writers == 0 {
		p.add("%s: no service writes the token file %s (stakhanov token --out)", where, file)
	}
}

// checkPipelineService checks the ports, volumes and healthcheck of the
// service running the pipeline.
func checkPipelineService(p *problems, where string, proj *composetypes.Project, s composetypes.ServiceConfig, r resolved, d dockerfile) {
	published := map[uint32]composetypes.ServicePortConfig{}
	for _, pc := range s.Ports {
		published[pc.Target] = pc
	}
	for _, a := range []struct {
		key  string
		want int
		open bool // may be published beyond loopback
	}{{"endpoints.metrics_addr", 9464, true}, {"endpoints.query_addr", 8080, false}, {"endpoints.flight_addr", 8815, false}} {
		host, n, err := port(r.get(a.key))
		switch {
		case err != nil:
			p.add("%s: %s: %v", where, a.key, err)
			continue
		case n != a.want:
			p.add("%s: %s port %d, want %d", where, a.key, n, a.want)
		case isLoopback(host):
			p.add("%s: %s %s: other containers cannot reach loopback", where, a.key, r.get(a.key))
		}
		if !d.expose[n] {
			p.add("%s: %s port %d is not EXPOSEd by the Dockerfile", where, a.key, n)
		}
		pc, ok := published[uint32(n)]
		if !ok {
			p.add("%s: port %d (%s) is not published", where, n, a.key)
		} else if !a.open && !isLoopback(pc.HostIP) {
			p.add("%s: port %d serves SQL (%s): publish it on 127.0.0.1 only", where, n, a.key)
		}
	}
	if role := r.get("pipeline.role"); role != "all" {
		p.add("%s: runs role %s: a single process needs all", where, role)
	}
	db := r.get("duckdb.path")
	snaps := r.get("snapshots.dir")
	if snaps == "" {
		snaps = db + ".snapshot"
	}
	for _, f := range []string{db, snaps} {
		if !slices.ContainsFunc(s.Volumes, func(v composetypes.ServiceVolumeConfig) bool {
			return v.Type == composetypes.VolumeTypeVolume && within(f, v.Target) && proj.Volumes[v.Source].Name != ""
		}) {
			p.add("%s: %s is on no named volume", where, f)
		}
	}
	if h := s.HealthCheck; h == nil || h.Disable || len(h.Test) == 0 {
		p.add("%s: no healthcheck", where)
	} else if h.Test[0] == "CMD" && len(h.Test) > 3 && h.Test[2] == "query" {
		cl, err := parseCommandLine(h.Test[2:])
		if err == nil {
			u, err := url.Parse(cl.flags["endpoint"])
			_, qport, _ := port(r.get("endpoints.query_addr"))
			if err != nil || u.Port() != strconv.Itoa(qport) || !isLoopback(u.Hostname()) {
				p.add("%s: the healthcheck asks %q, the SQL endpoint is on port %d of this container", where, cl.flags["endpoint"], qport)
			}
			if f, ok := cl.flags["query-token-file"]; ok && f != r.get("endpoints.query_token_file") {
				p.add("%s: the healthcheck sends the token of %s, the endpoint reads %s", where, f, r.get("endpoints.query_token_file"))
			}
			if (u != nil && u.Scheme == "https") != (r.get("endpoints.query_tls.cert_file") != "") {
				serves := "plain HTTP"
				if r.get("endpoints.query_tls.cert_file") != "" {
					serves = "TLS"
				}
				p.add("%s: the healthcheck asks %q, the endpoint serves %s", where, cl.flags["endpoint"], serves)
			}
		}
	}
	if st := r.cfg.Run.Ingest.ShutdownTimeout; s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= st {
		p.add("%s: stop_grace_period must exceed pipeline.shutdown_timeout %v", where, st)
	}
}

// checkImageHealthcheck: the image has no shell, so a healthcheck runs the
// binary itself, with a real command line.
func checkImageHealthcheck(p *problems, where string, test []string, d dockerfile) {
	if test[0] != "CMD" {
		p.add("%s: healthcheck %q: the image has no shell; use CMD and the binary", where, test)
		return
	}
	argv := test[1:]
	if len(argv) == 0 || !slices.Equal(argv[:1], d.entrypoint) {
		p.add("%s: healthcheck %q does not run the image's %q", where, test, d.entrypoint)
		return
	}
	if _, err := parseCommandLine(argv[1:]); err != nil {
		p.add("%s: healthcheck %q: %v", where, test, err)
	}
}

// notebooksRead: some file under notebooks/ names the variable.
func notebooksRead(name string) bool {
	found := false
	filepath.WalkDir(filepath.Join(repoRoot, "notebooks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(name)) {
			found = true
		}
		return nil
	})
	return found
}

// ---------------------------------------------------------------------------
// Grafana

// dashboard is the part of Grafana's dashboard model (schemaVersion 39)
// this dashboard uses; a field outside it is an error.
type dashboard struct {
	Inputs   []dashboardInput `json:"__inputs"`
	Requires []struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"__requires"`
	UID                  string   `json:"uid"`
	Title                string   `json:"title"`
	Description          string   `json:"description"`
	Tags                 []string `json:"tags"`
	Editable             bool     `json:"editable"`
	GraphTooltip         int      `json:"graphTooltip"`
	Timezone             string   `json:"timezone"`
	Refresh              string   `json:"refresh"`
	SchemaVersion        int      `json:"schemaVersion"`
	Version              int      `json:"version"`
	FiscalYearStartMonth int      `json:"fiscalYearStartMonth"`
	LiveNow              bool     `json:"liveNow"`
	Links                []struct {
	} `json:"links"`
	Time struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Timepicker  struct{} `json:"timepicker"`
	Annotations struct {
		List []struct {
			BuiltIn    int        `json:"builtIn"`
			Datasource datasource `json:"datasource"`
			Enable     bool       `json:"enable"`
			Hide       bool       `json:"hide"`
			IconColor  string     `json:"iconColor"`
			Name       string     `json:"name"`
			Type       string     `json:"type"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name        string   `json:"name"`
			Label       string   `json:"label"`
			Type        string   `json:"type"`
			Query       string   `json:"query"`
			Current     struct{} `json:"current"`
			Hide        int      `json:"hide"`
			Refresh     int      `json:"refresh"`
			Regex       string   `json:"regex"`
			IncludeAll  bool     `json:"includeAll"`
			Multi       bool     `json:"multi"`
			Options     []any    `json:"options"`
			SkipURLSync bool     `json:"skipUrlSync"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type dashboardInput struct {
	Name        string `json:"name"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Type        string `json:"type"`
	PluginID    string `json:"pluginId"`
	PluginName  string `json:"pluginName"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type threshold struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

type panel struct {
	ID          int        `json:"id"`
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Datasource  datasource `json:"datasource"`
	GridPos     struct {
		X int `json:"x"`
		Y int `json:"y"`
		W int `json:"w"`
		H int `json:"h"`
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit  string   `json:"unit"`
			Min   *float64 `json:"min,omitempty"`
			Max   *float64 `json:"max,omitempty"`
			Color *struct {
				Mode       string `json:"mode"`
				FixedColor string `json:"fixedColor"`
			} `json:"color,omitempty"`
			Thresholds *struct {
				Mode  string      `json:"mode"`
				Steps []threshold `json:"steps"`
			} `json:"thresholds,omitempty"`
			Custom *struct {
				DrawStyle   string `json:"drawStyle"`
				LineWidth   int    `json:"lineWidth"`
				FillOpacity int    `json:"fillOpacity"`
				ShowPoints  string `json:"showPoints"`
				SpanNulls   bool   `json:"spanNulls"`
				Stacking    struct {
					Mode  string `json:"mode"`
					Group string `json:"group"`
				} `json:"stacking"`
			} `json:"custom,omitempty"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Options struct {
		Legend *struct {
			DisplayMode string   `json:"displayMode"`
			Placement   string   `json:"placement"`
			ShowLegend  bool     `json:"showLegend"`
			Calcs       []string `json:"calcs"`
		} `json:"legend,omitempty"`
		Tooltip *struct {
			Mode string `json:"mode"`
			Sort string `json:"sort"`
		} `json:"tooltip,omitempty"`
		ReduceOptions *struct {
			Calcs  []string `json:"calcs"`
			Fields string   `json:"fields"`
			Values bool     `json:"values"`
		} `json:"reduceOptions,omitempty"`
		ColorMode   string `json:"colorMode,omitempty"`
		GraphMode   string `json:"graphMode,omitempty"`
		JustifyMode string `json:"justifyMode,omitempty"`
		Orientation string `json:"orientation,omitempty"`
		TextMode    string `json:"textMode,omitempty"`
	} `json:"options"`
	Targets []struct {
		RefID        string     `json:"refId"`
		Datasource   datasource `json:"datasource"`
		Expr         string     `json:"expr"`
		LegendFormat string     `json:"legendFormat"`
		Range        bool       `json:"range"`
		Instant      bool       `json:"instant"`
	} `json:"targets"`
}

const dsVar = "DS_PROMETHEUS"

var (
	metricRef = regexp.MustCompile(`\bstakhanov_[a-z0-9_]+`)
	inRate    = regexp.MustCompile(`\b(rate|irate|increase)\(\s*$`)
)

func checkDashboard(fs files) problems {
	var p problems
	const where = "grafana/stakhanov-dashboard.json"
	var d dashboard
	strict, err := sigsjson.UnmarshalStrict(fs[where], &d)
	if err = errors.Join(append(strict, err)...); err != nil {
		p.add("%s: %v", where, err)
		return p
	}
	if d.SchemaVersion != 39 {
		p.add("%s: schemaVersion %d, want 39", where, d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Inputs, func(in dashboardInput) bool {
		return in.Name == dsVar && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		p.add("%s: no __inputs entry %s (a Prometheus data source)", where, dsVar)
	}
	hasVar := false
	for _, v := range d.Templating.List {
		hasVar = hasVar || (v.Name == dsVar && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !hasVar {
		p.add("%s: no templated data source variable %s", where, dsVar)
	}
	wantDS := datasource{Type: "prometheus", UID: "${" + dsVar + "}"}
	used := map[string]bool{}
	ids := map[int]bool{}
	type rect struct{ x, y, w, h int }
	var rects []rect
	quantiles := map[string]bool{}
	for _, pn := range d.Panels {
		pw := fmt.Sprintf("%s: panel %d %q", where, pn.ID, pn.Title)
		if ids[pn.ID] {
			p.add("%s: id used twice", pw)
		}
		ids[pn.ID] = true
		if pn.Type != "timeseries" && pn.Type != "stat" {
			p.add("%s: type %q", pw, pn.Type)
		}
		if pn.Datasource != wantDS {
			p.add("%s: data source %+v, want %+v", pw, pn.Datasource, wantDS)
		}
		g := pn.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			p.add("%s: gridPos %+v outside the 24 columns", pw, g)
		}
		for _, r := range rects {
			if g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H {
				p.add("%s: overlaps another panel", pw)
			}
		}
		rects = append(rects, rect{g.X, g.Y, g.W, g.H})
		if len(pn.Targets) == 0 {
			p.add("%s: no query", pw)
		}
		refs := map[string]bool{}
		for _, t := range pn.Targets {
			if refs[t.RefID] || t.RefID == "" {
				p.add("%s: refId %q missing or repeated", pw, t.RefID)
			}
			refs[t.RefID] = true
			if t.Datasource != wantDS {
				p.add("%s: query %s: data source %+v, want %+v", pw, t.RefID, t.Datasource, wantDS)
			}
			if strings.Count(t.Expr, "(") != strings.Count(t.Expr, ")") || strings.Count(t.Expr, "[") != strings.Count(t.Expr, "]") {
				p.add("%s: %s: unbalanced brackets", pw, t.Expr)
			}
			if m := regexp.MustCompile(`histogram_quantile\(\s*([0-9.]+)`).FindStringSubmatch(t.Expr); m != nil {
				quantiles[m[1]] = true
			}
			refsIn := metricRef.FindAllStringIndex(t.Expr, -1)
			if len(refsIn) == 0 {
				p.add("%s: %s uses no stakhanov metric", pw, t.Expr)
			}
			for _, loc := range refsIn {
				name := t.Expr[loc[0]:loc[1]]
				base, kind, ok := name, metricKind(-1), false
				if kind, ok = metrics[name]; !ok {
					for _, suf := range []string{"_bucket", "_sum", "_count"} {
						if b := strings.TrimSuffix(name, suf); b != name && metrics[b] == histogram {
							base, kind, ok = b, histogram, true
						}
					}
				}
				if !ok {
					p.add("%s: %s is not a metric the pipeline exports", pw, name)
					continue
				}
				used[base] = true
				rated := inRate.MatchString(t.Expr[:loc[0]])
				switch {
				case kind == counter && !rated:
					p.add("%s: counter %s outside rate() or increase()", pw, name)
				case kind == histogram && !rated:
					p.add("%s: histogram series %s outside rate() or increase()", pw, name)
				case kind == gauge && rated:
					p.add("%s: gauge %s inside rate()", pw, name)
				}
			}
		}
	}
	for _, m := range sortedKeys(metrics) {
		if !used[m] {
			p.add("%s: no panel shows %s", where, m)
		}
	}
	for _, q := range []string{"0.5", "0.99"} {
		if !quantiles[q] {
			p.add("%s: no histogram_quantile(%s, …) of the commit latency", where, q)
		}
	}
	return p
}

// ---------------------------------------------------------------------------
// The tests

func TestDockerfile(t *testing.T)    { report(t, checkDockerfile(readDeploy(t))) }
func TestExampleConfig(t *testing.T) { report(t, checkExample(readDeploy(t))) }
func TestKubernetes(t *testing.T)    { report(t, checkKubernetes(readDeploy(t))) }
func TestCompose(t *testing.T)       { report(t, checkCompose(readDeploy(t))) }
func TestDashboard(t *testing.T)     { report(t, checkDashboard(readDeploy(t))) }

// TestMetricsExported: the dashboard's metric list is the pipeline's: each
// name is a string in its source.
func TestMetricsExported(t *testing.T) {
	var src bytes.Buffer
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "deploy" || strings.HasPrefix(d.Name(), ".")) && p != repoRoot {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			data, err := os.ReadFile(p)
			src.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sortedKeys(metrics) {
		if !bytes.Contains(src.Bytes(), []byte(`"`+m+`"`)) {
			t.Errorf("%s is in no Go source of the pipeline", m)
		}
	}
}

// TestChecksCatchMistakes breaks each file in one way at a time, in memory,
// and expects the checks to notice: a check that cannot fail checks nothing.
func TestChecksCatchMistakes(t *testing.T) {
	type check func(files) problems
	cases := []struct {
		file, old, new string
		check          check
	}{
		// Kubernetes: strict decoding
		{"k8s/processor-deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystm: true", checkKubernetes},
		{"k8s/processor-deployment.yaml", "containerPort: 9464", "containerport: 9464", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "storage: 50Gi", "storage: 50 gigabytes", checkKubernetes},
		{"k8s/metrics-service.yaml", "  selector:", "  selector:\n    app.kubernetes.io/name: stakhanov\n  selector:", checkKubernetes},
		// Kubernetes: against the pipeline
		{"k8s/processor-deployment.yaml", "STAKHANOV_PIPELINE_ROLE", "STAKHANOV_PIPELINE_ROLES", checkKubernetes},
		{"k8s/processor-deployment.yaml", "value: process", "value: sink", checkKubernetes},
		{"k8s/processor-deployment.yaml", `args: ["run",`, `args: ["runn",`, checkKubernetes},
		{"k8s/processor-deployment.yaml", `"--config"`, `"--configs"`, checkKubernetes},
		{"k8s/processor-deployment.yaml", "/etc/stakhanov/stakhanov.yaml", "/etc/stakhanov/config.yaml", checkKubernetes},
		{"k8s/processor-deployment.yaml", "containerPort: 9464", "containerPort: 9465", checkKubernetes},
		{"k8s/processor-deployment.yaml", "path: /readyz", "path: /ready", checkKubernetes},
		{"k8s/processor-deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20", checkKubernetes},
		{"k8s/processor-deployment.yaml", "runAsUser: 65532", "runAsUser: 1000", checkKubernetes},
		{"k8s/processor-deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", checkKubernetes},
		{"k8s/processor-deployment.yaml", "key: sasl-password", "key: password", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "replicas: 1", "replicas: 2", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "image: stakhanov:latest", "image: stakhanov:v2", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "mountPath: /var/lib/stakhanov", "mountPath: /data", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "containerPort: 8080", "containerPort: 8081", checkKubernetes},
		{"k8s/configmap.yaml", "memory_limit: 2GB", "memory_limt: 2GB", checkKubernetes},
		{"k8s/configmap.yaml", "metrics_addr: 0.0.0.0:9464", "metrics_addr: 127.0.0.1:9464", checkKubernetes},
		{"k8s/configmap.yaml", "mechanism: scram-sha-512", "mechanism: scram-sha-1", checkKubernetes},
		{"k8s/configmap.yaml", "        # The password is", "        password: hunter2\n        # The password is", checkKubernetes},
		{"k8s/kustomization.yaml", "  - sink-service.yaml\n", "", checkKubernetes},
		{"k8s/kustomization.yaml", "  - name: stakhanov", "  - name: stakhanov-pipeline", checkKubernetes},
		{"k8s/secret.example.yaml", "REPLACE-WITH-THE-SASL-PASSWORD", "hunter2", checkKubernetes},
		{"k8s/sink-service.yaml", "    app.kubernetes.io/component: sink\n  ports:", "  ports:", checkKubernetes},
		{"k8s/metrics-service.yaml", "name: metrics", "name: prometheus", checkKubernetes},
		// Kubernetes: the query endpoint's token, TLS and who reaches it
		{"k8s/configmap.yaml", "      query_token_file: /etc/stakhanov-query-token/token\n", "", checkKubernetes},
		{"k8s/configmap.yaml", "query_token_file: /etc/stakhanov-query-token/token", "query_token_file: /etc/stakhanov/token", checkKubernetes},
		{"k8s/configmap.yaml", "query_token_file: /etc/stakhanov-query-token/token", "query_token_file: /etc/stakhanov-query-tls/tls.key", checkKubernetes},
		{"k8s/configmap.yaml", "query_token_file: /etc/stakhanov-query-token/token", "query_token: 0123456789abcdef0123456789abcdef", checkKubernetes},
		{"k8s/configmap.yaml", "        cert_file: /etc/stakhanov-query-tls/tls.crt\n        key_file: /etc/stakhanov-query-tls/tls.key\n", "        cert_file: \"\"\n", checkKubernetes},
		{"k8s/configmap.yaml", "        cert_file: /etc/stakhanov-query-tls/tls.crt\n", "", checkKubernetes},
		{"k8s/configmap.yaml", "cert_file: /etc/stakhanov-query-tls/tls.crt", "cert_file: /etc/stakhanov-query-token/token", checkKubernetes},
		{"k8s/secret.example.yaml", "type: kubernetes.io/tls", "type: Opaque", checkKubernetes},
		{"k8s/secret.example.yaml", "name: stakhanov-query\n", "name: stakhanov-query-token\n", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "secretName: stakhanov-query-tls", "secretName: stakhanov-query-cert", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "            - name: query-token\n              mountPath: /etc/stakhanov-query-token\n              readOnly: true\n", "", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "              mountPath: /etc/stakhanov-query-tls\n", "              mountPath: /etc/stakhanov-query-tls/tls.crt\n              subPath: tls.crt\n", checkKubernetes},
		{"k8s/sink-statefulset.yaml", "defaultMode: 0440", "defaultMode: 0400", checkKubernetes},
		{"k8s/networkpolicy.yaml", "  policyTypes: [\"Ingress\"]", "  policyType: [\"Ingress\"]", checkKubernetes},
		{"k8s/networkpolicy.yaml", "kind: NetworkPolicy\nmetadata:\n  name: stakhanov-metrics", "kind: NetworkPolicies\nmetadata:\n  name: stakhanov-metrics", checkKubernetes},
		{"k8s/networkpolicy.yaml", "      ports:\n        - port: query\n          protocol: TCP\n", "", checkKubernetes},
		{"k8s/networkpolicy.yaml", "        - port: query", "        - port: 8081", checkKubernetes},
		{"k8s/networkpolicy.yaml", "        - podSelector:\n            matchLabels:\n              stakhanov-query-client: \"true\"", "        - namespaceSelector: {}", checkKubernetes},
		{"k8s/networkpolicy.yaml", "        - podSelector:\n            matchLabels:\n              stakhanov-query-client: \"true\"", "        - podSelector: {}", checkKubernetes},
		{"k8s/networkpolicy.yaml", "        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring\n          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: prometheus", "        - ipBlock:\n            cidr: 0.0.0.0/0", checkKubernetes},
		{"k8s/networkpolicy.yaml", "        - port: metrics", "        - port: 9464\n        - port: 22", checkKubernetes},
		{"k8s/networkpolicy.yaml", "      app.kubernetes.io/name: stakhanov\n  policyTypes: [\"Ingress\"]", "      app.kubernetes.io/name: stakhanov\n  policyTypes: [\"Ingress\", \"Egress\"]", checkKubernetes},
		{"k8s/networkpolicy.yaml", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: stakhanov\n  policyTypes", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: stakhanov-pipeline\n  policyTypes", checkKubernetes},
		{"k8s/kustomization.yaml", "  - networkpolicy.yaml\n", "", checkKubernetes},
		// Kubernetes: the Flight SQL server, exposed beside the endpoint
		{"k8s/sink-statefulset.yaml", "containerPort: 8815", "containerPort: 8816", checkKubernetes},
		{"k8s/configmap.yaml", "flight_addr: 0.0.0.0:8815", "flight_addr: 127.0.0.1:8815", checkKubernetes},
		{"k8s/configmap.yaml", "flight_addr: 0.0.0.0:8815", "flight_addr: \"off\"", checkKubernetes},
		{"k8s/sink-service.yaml", "    - name: flight\n      port: 8815\n      targetPort: flight\n      protocol: TCP\n", "", checkKubernetes},
		{"k8s/sink-service.yaml", "      port: 8815", "      port: 31337", checkKubernetes},
		{"k8s/networkpolicy.yaml", "        - port: flight\n          protocol: TCP\n", "", checkKubernetes},
		// Compose
		{"docker-compose.yml", "name: stakhanov\n", "version: \"3.8\"\nname: stakhanov\n", checkCompose},
		{"docker-compose.yml", "      STAKHANOV_ENDPOINTS_QUERY_TOKEN_FILE: /run/stakhanov/query-token\n", "", checkCompose},
		{"docker-compose.yml", `["token", "--out", "/run/stakhanov/query-token"]`, `["token", "--out", "/run/stakhanov/token"]`, checkCompose},
		{"docker-compose.yml", `["token", "--out", "/run/stakhanov/query-token"]`, `["tokens", "--out", "/run/stakhanov/query-token"]`, checkCompose},
		{"docker-compose.yml", "        condition: service_completed_successfully", "        condition: service_started", checkCompose},
		{"docker-compose.yml", "        source: query-token\n        target: /run/stakhanov\n        read_only: true\n    ports:\n      - 127.0.0.1:9464", "        source: query-token\n        target: /run/stakhanov\n        read_only: false\n    ports:\n      - 127.0.0.1:9464", checkCompose},
		{"docker-compose.yml", `"/stakhanov", "query", "--endpoint", "http://127.0.0.1:8080"`, `"/stakhanov", "query", "--endpoint", "https://127.0.0.1:8080"`, checkCompose},
		{"docker-compose.yml", "      interval: 15s", "      intervall: 15s", checkCompose},
		{"docker-compose.yml", "    stop_grace_period: 45s", "    stop_grace_periode: 45s", checkCompose},
		{"docker-compose.yml", "STAKHANOV_SNAPSHOTS_INTERVAL", "STAKHANOV_SNAPSHOT_INTERVAL", checkCompose},
		{"docker-compose.yml", "STAKHANOV_ENDPOINTS_QUERY_ADDR: 0.0.0.0:8080", "STAKHANOV_ENDPOINTS_QUERY_ADDR: 0.0.0.0:8081", checkCompose},
		{"docker-compose.yml", "STAKHANOV_ENDPOINTS_METRICS_ADDR: 0.0.0.0:9464", "STAKHANOV_ENDPOINTS_METRICS_ADDR: 127.0.0.1:9464", checkCompose},
		{"docker-compose.yml", "STAKHANOV_DUCKDB_PATH: /var/lib/stakhanov/stakhanov.duckdb", "STAKHANOV_DUCKDB_PATH: /tmp/stakhanov.duckdb", checkCompose},
		{"docker-compose.yml", "STAKHANOV_PIPELINE_ROLE: all", "STAKHANOV_PIPELINE_ROLE: process", checkCompose},
		{"docker-compose.yml", "STAKHANOV_PIPELINE_ROLE: all", "STAKHANOV_PIPELINE_ROLE: everything", checkCompose},
		{"docker-compose.yml", "target: /etc/stakhanov/stakhanov.yaml", "target: /etc/stakhanov/other.yaml", checkCompose},
		{"docker-compose.yml", `"--seed", "1935"`, `"--sead", "1935"`, checkCompose},
		{"docker-compose.yml", `["simulate", "--brokers", "kafka:9092"`, `["simulate", "--brokers", "kafka:9093"`, checkCompose},
		{"docker-compose.yml", "PLAINTEXT://kafka:9092", "PLAINTEXT://broker:9092", checkCompose},
		{"docker-compose.yml", "127.0.0.1:8080:8080", "8080:8080", checkCompose},
		{"docker-compose.yml", "127.0.0.1:8815:8815", "8815:8815", checkCompose},
		{"docker-compose.yml", "      - 127.0.0.1:8815:8815\n", "", checkCompose},
		{"docker-compose.yml", "STAKHANOV_ENDPOINTS_FLIGHT_ADDR: 0.0.0.0:8815", "STAKHANOV_ENDPOINTS_FLIGHT_ADDR: 127.0.0.1:8815", checkCompose},
		{"docker-compose.yml", `"/stakhanov", "query"`, `"/stakhanov", "qeury"`, checkCompose},
		{"docker-compose.yml", `"--endpoint", "http://127.0.0.1:8080"`, `"--endpoint", "http://127.0.0.1:9464"`, checkCompose},
		{"docker-compose.yml", "snapshots/stakhanov-snapshot.duckdb", "stakhanov.duckdb", checkCompose},
		{"docker-compose.yml", "        target: /var/lib/stakhanov\n        read_only: true\n      # The SQL endpoint's token", "        target: /var/lib/stakhanov\n        read_only: false\n      # The SQL endpoint's token", checkCompose},
		{"docker-compose.yml", "        read_only: true\n    ports:\n      - 127.0.0.1:8888", "        read_only: false\n    ports:\n      - 127.0.0.1:8888", checkCompose},
		{"docker-compose.yml", "    pull_policy: never\n", "", checkCompose},
		{"docker-compose.yml", "    image: stakhanov:latest\n    # Always", "    image: stakhanov:dev\n    # Always", checkKubernetes},
		// the example configuration
		{"stakhanov.yaml", "  threads: 1", "  thread: 1", checkExample},
		{"stakhanov.yaml", "  report_every: 30s\n", "", checkExample},
		{"stakhanov.yaml", `    password: ""`, `    password: "hunter2"`, checkExample},
		// the dashboard
		{"grafana/stakhanov-dashboard.json", `"schemaVersion": 39`, `"schemaVersion": 38`, checkDashboard},
		{"grafana/stakhanov-dashboard.json", `"gridPos"`, `"gridpos"`, checkDashboard},
		{"grafana/stakhanov-dashboard.json", `"refresh": "30s"`, `"refresh": "30s", "refreshh": "1m"`, checkDashboard},
		{"grafana/stakhanov-dashboard.json", "stakhanov_state_bytes", "stakhanov_state_byte", checkDashboard},
		{"grafana/stakhanov-dashboard.json", "sum(rate(stakhanov_alerts_total[$__rate_interval]))", "sum(stakhanov_alerts_total)", checkDashboard},
		{"grafana/stakhanov-dashboard.json", "histogram_quantile(0.99,", "histogram_quantile(0.9,", checkDashboard},
		{"grafana/stakhanov-dashboard.json", `"uid": "${DS_PROMETHEUS}"`, `"uid": "prometheus"`, checkDashboard},
		// the Dockerfile
		{"Dockerfile", "EXPOSE 8080", "EXPOSE 8081", checkDockerfile},
		{"Dockerfile", "EXPOSE 8815", "EXPOSE 8816", checkDockerfile},
		{"Dockerfile", "-tags=duckdb_arrow", "-tags=duckdb", checkDockerfile},
		{"Dockerfile", `CMD ["run"]`, `CMD ["rum"]`, checkDockerfile},
		{"Dockerfile", "WORKDIR /var/lib/stakhanov", "ENV STAKHANOV_DUCKDB_PATH=/var/lib/stakhanov/x.duckdb", checkDockerfile},
		{"Dockerfile", "USER 65532:65532", "USER 1000:1000", checkKubernetes},
	}
	orig := readDeploy(t)
	for _, c := range cases {
		data, ok := orig[c.file]
		if !ok || !bytes.Contains(data, []byte(c.old)) {
			t.Errorf("%s no longer contains %q: update this case", c.file, c.old)
			continue
		}
		broken := files{}
		for k, v := range orig {
			broken[k] = v
		}
		broken[c.file] = bytes.Replace(data, []byte(c.old), []byte(c.new), 1)
		if p := c.check(broken); len(p) == 0 {
			t.Errorf("%s: %q → %q went unnoticed", c.file, c.old, c.new)
		} else {
			t.Logf("%s: %q → %q: %s", c.file, c.old, c.new, p[0])
		}
	}
}
