package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Errors of a resolution. Each is wrapped with where it happened (a file
// and line, a variable, a flag).
var (
	// ErrUnknownKey: the file names a key no option has.
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadValue: a source gave an option a value it cannot take.
	ErrBadValue = errors.New("bad value")
)

// EnvPrefix starts every environment variable of an option.
const EnvPrefix = "STAKHANOV_"

// Source says where an option's value came from.
type Source int

// Sources, in increasing precedence.
const (
	FromDefault Source = iota
	FromFile
	FromEnv
	FromFlag
)

func (s Source) String() string {
	return [...]string{"default", "file", "environment", "flag"}[s]
}

// Option is one setting.
type Option struct {
	Key    string // dotted path in the file: "kafka.sasl.password"
	Flag   string // command-line flag name, "" for none
	Usage  string
	Secret bool // printed redacted
	Value  flag.Value

	deflt  string // the value's text when registered
	source Source
	from   string // the file:line, variable or flag that set it
	raw    string // the flag's text, replayed after file and environment
	set    bool   // the flag was given
}

// Env is the option's environment variable.
func (o *Option) Env() string { return EnvName(o.Key) }

// Source says where the value came from, and which file line, variable or
// flag set it ("" for a default).
func (o *Option) Source() (Source, string) { return o.source, o.from }

// EnvName turns a key into its environment variable: STAKHANOV_ and the
// key in capitals, dots as underscores.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Registry is a command's options, in the order they were added (the
// order they are printed in).
type Registry struct {
	opts  []*Option
	byKey map[string]*Option
}

// Add registers an option. Keys are lower-case words joined by dots; a
// key that is a prefix section of another ("kafka" and "kafka.brokers")
// cannot be both. It panics on a malformed or repeated key: that is a
// programming error, caught by any test that builds the registry.
func (r *Registry) Add(o *Option) *Option {
	if r.byKey == nil {
		r.byKey = map[string]*Option{}
	}
	if o.Key == "" || strings.Trim(o.Key, "abcdefghijklmnopqrstuvwxyz0123456789_.") != "" ||
		strings.Contains(o.Key, "..") || o.Key[0] == '.' || o.Key[len(o.Key)-1] == '.' {
		panic("config: malformed key " + strconv.Quote(o.Key))
	}
	if _, dup := r.byKey[o.Key]; dup {
		panic("config: key registered twice: " + o.Key)
	}
	for k := range r.byKey {
		if strings.HasPrefix(k, o.Key+".") || strings.HasPrefix(o.Key, k+".") {
			panic("config: key " + o.Key + " and " + k + " overlap")
		}
	}
	o.deflt = o.Value.String()
	r.byKey[o.Key] = o
	r.opts = append(r.opts, o)
	return o
}

// Var registers an option with a flag of the same meaning.
func (r *Registry) Var(v flag.Value, key, flagName, usage string) *Option {
	return r.Add(&Option{Key: key, Flag: flagName, Usage: usage, Value: v})
}

// Options lists the options in registration order.
func (r *Registry) Options() []*Option { return slices.Clone(r.opts) }

// Lookup finds an option by key.
func (r *Registry) Lookup(key string) *Option { return r.byKey[key] }

// Bind defines the options' flags on fs. A flag only records its text
// when parsed: Resolve applies it last, over the file and the
// environment.
func (r *Registry) Bind(fs *flag.FlagSet) {
	for _, o := range r.opts {
		if o.Flag == "" {
			continue
		}
		fs.Var(recorder{o}, o.Flag, o.Usage+" ["+o.Env()+", "+o.Key+"]")
	}
}

// recorder stands in for an option's value on the command line.
type recorder struct{ o *Option }

func (f recorder) Set(s string) error {
	// checked at once, so a bad flag fails as a flag does
	if err := f.o.Value.Set(s); err != nil {
		return err
	}
	f.o.raw, f.o.set = s, true
	return nil
}

func (f recorder) String() string {
	if f.o == nil || f.o.Value == nil {
		return ""
	}
	return f.o.Value.String()
}

func (f recorder) IsBoolFlag() bool {
	b, ok := f.o.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Resolve sets every option from the sources, after the flags were parsed:
// the file at path (none when path is ""), then the environment through
// lookup (os.LookupEnv when nil), then the flags given. Defaults are the
// values the variables held when registered, before any flag was parsed.
func (r *Registry) Resolve(path string, lookup func(string) (string, bool)) error {
	// Parsing the flags already set their variables; start again from the
	// defaults underneath them.
	for _, o := range r.opts {
		if o.set {
			if err := o.Value.Set(o.def()); err != nil {
				return fmt.Errorf("config: resetting %s: %w", o.Key, err)
			}
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := r.LoadYAML(data, path); err != nil {
			return err
		}
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if err := r.applyEnv(lookup); err != nil {
		return err
	}
	for _, o := range r.opts {
		if o.set {
			if err := o.Value.Set(o.raw); err != nil {
				return fmt.Errorf("config: flag -%s: %w: %w", o.Flag, ErrBadValue, err)
			}
			o.source, o.from = FromFlag, "-"+o.Flag
		}
	}
	return nil
}

// def is the option's default as text, kept from before the flags.
func (o *Option) def() string { return o.deflt }

// LoadYAML sets the options the YAML document names. name is used in
// errors ("stakhanov.yaml:12: unknown key kafka.brokrs").
func (r *Registry) LoadYAML(data []byte, name string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s:%d: %w: the file must be a mapping of keys", name, root.Line, ErrBadValue)
	}
	return r.walk(root, "", name)
}

func (r *Registry) walk(m *yaml.Node, prefix, name string) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		at := fmt.Sprintf("%s:%d", name, k.Line)
		if seen[k.Value] {
			return fmt.Errorf("config: %s: %w: %s given twice", at, ErrBadValue, key)
		}
		seen[k.Value] = true
		o := r.byKey[key]
		if o == nil {
			if v.Kind == yaml.MappingNode && r.isSection(key) {
				if err := r.walk(v, key, name); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("config: %s: %w %s%s", at, ErrUnknownKey, key, r.suggest(key))
		}
		text, err := scalarText(o, v)
		if err != nil {
			return fmt.Errorf("config: %s: %s: %w: %w", at, key, ErrBadValue, err)
		}
		if err := o.Value.Set(text); err != nil {
			return fmt.Errorf("config: %s: %s: %w: %w", at, key, ErrBadValue, err)
		}
		o.source, o.from = FromFile, at
	}
	return nil
}

// isSection: some option's key continues key.
func (r *Registry) isSection(key string) bool {
	for k := range r.byKey {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// suggest names the keys of the same section, for a misspelled key.
func (r *Registry) suggest(key string) string {
	section := ""
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		section = key[:i+1]
	}
	var near []string
	for _, o := range r.opts {
		if strings.HasPrefix(o.Key, section) {
			rest := strings.TrimPrefix(o.Key, section)
			if i := strings.IndexByte(rest, '.'); i >= 0 {
				rest = rest[:i]
			}
			if !slices.Contains(near, section+rest) {
				near = append(near, section+rest)
			}
		}
	}
	if len(near) == 0 || len(near) > 12 {
		return ""
	}
	return " (known here: " + strings.Join(near, ", ") + ")"
}

func scalarText(o *Option, v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return "", nil
		}
		return v.Value, nil
	case yaml.SequenceNode:
		if _, ok := o.Value.(interface{ isList() }); !ok {
			return "", errors.New("a list where one value is expected")
		}
		parts := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode {
				return "", errors.New("a list of lists or mappings")
			}
			if strings.Contains(item.Value, ",") {
				return "", fmt.Errorf("list item %q contains a comma", item.Value)
			}
			parts = append(parts, item.Value)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", errors.New("a mapping where a value is expected")
	}
}

func (r *Registry) applyEnv(lookup func(string) (string, bool)) error {
	for _, o := range r.opts {
		s, ok := lookup(o.Env())
		if !ok {
			continue
		}
		if err := o.Value.Set(s); err != nil {
			return fmt.Errorf("config: %s: %w: %w", o.Env(), ErrBadValue, err)
		}
		o.source, o.from = FromEnv, o.Env()
	}
	return nil
}

// UnknownEnv lists the variables of environ ("NAME=value") that start
// with EnvPrefix but belong to no option: most likely misspelled, and
// worth a warning (other programs' STAKHANOV_ variables are not errors).
func (r *Registry) UnknownEnv(environ []string, allowed ...string) []string {
	known := map[string]bool{}
	for _, o := range r.opts {
		known[o.Env()] = true
	}
	for _, a := range allowed {
		known[a] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Redacted is printed for a secret that is set.
const Redacted = "<redacted>"

// WriteYAML prints the effective configuration as a file that Resolve
// reads back to the same values (secrets aside): each option under its
// section, with its usage and, when not a default, where it came from.
func (r *Registry) WriteYAML(w io.Writer) error {
	var b strings.Builder
	var path []string // sections open
	for _, o := range r.opts {
		parts := strings.Split(o.Key, ".")
		sections, leaf := parts[:len(parts)-1], parts[len(parts)-1]
		common := 0
		for common < len(path) && common < len(sections) && path[common] == sections[common] {
			common++
		}
		for i := common; i < len(sections); i++ {
			fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), sections[i])
		}
		path = sections
		indent := strings.Repeat("  ", len(sections))
		note := o.Usage
		if o.source != FromDefault {
			note += " (from " + o.source.String() + " " + o.from + ")"
		}
		fmt.Fprintf(&b, "%s# %s\n", indent, note)
		val := o.Value.String()
		if o.Secret && val != "" {
			val = Redacted
		}
		fmt.Fprintf(&b, "%s%s: %s\n", indent, leaf, yamlScalar(o, val))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// yamlScalar quotes a value so that YAML reads back the same text.
func yamlScalar(o *Option, s string) string {
	if _, ok := o.Value.(interface{ isList() }); ok {
		if s == "" {
			return "[]"
		}
		items := strings.Split(s, ",")
		for i, it := range items {
			items[i] = strconv.Quote(it)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	switch o.Value.(type) {
	case intValue, floatValue, boolValue:
		return s
	}
	return strconv.Quote(s)
}
