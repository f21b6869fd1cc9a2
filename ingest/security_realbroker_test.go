package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/stakhanov/stakhanov/internal/testenv"
)

// A refusal must end Run within this long: the credentials or the
// certificate will not get better by retrying.
const secRefusedWithin = 20 * time.Second

// At most this many refused connections per refused Run, as the broker
// counts them: a pipeline that retried its way to the deadline would
// leave hundreds.
const secMaxRefusals = 30

// The broker's users: PLAIN users live in its JAAS configuration, SCRAM
// users in the cluster metadata. Different names keep a mix-up of the two
// stores from passing.
const (
	secPlainUser, secPlainPassword = "alice", "alice-secret"
	secScramUser, secScramPassword = "carol", "carol-secret"
)

// TestSecurityRealBroker runs Apache Kafka with a SASL_SSL listener
// (local-kafka.sh with KAFKA_SASL_SSL_PORT; on free ports the OS picks, or
// on STAKHANOV_SECURITY_PORT, +1 and +2 when that is set) behind a certificate from a CA made for the
// test, and checks that the pipeline works through that listener alone
// with each SASL mechanism, and that wrong credentials or an untrusted
// certificate stop Run promptly with ErrAuthentication. It starts its own
// broker even when KAFKA_BROKERS names one: that one has no secured
// listener.
func TestSecurityRealBroker(t *testing.T) {
	if os.Getenv("STAKHANOV_SECURITY_TEST") != "1" && os.Getenv("KAFKA_BROKERS") == "" {
		t.Skip("runs Apache Kafka with TLS and SASL: set STAKHANOV_SECURITY_TEST=1 (or KAFKA_BROKERS, as CI's real-Kafka phase does)")
	}
	if testing.Short() {
		t.Skip("runs Apache Kafka")
	}
	testenv.Command(t, "java", "the TLS and SASL test runs Apache Kafka: make deps installs a JDK (apt-get install openjdk-17-jdk-headless)")
	port := 0 // free ports from the OS
	if s := os.Getenv("STAKHANOV_SECURITY_PORT"); s != "" {
		var err error
		if port, err = strconv.Atoi(s); err != nil || port < 1 || port > 65533 {
			t.Fatalf("STAKHANOV_SECURITY_PORT=%q: want a port number", s)
		}
	}
	dir := t.TempDir()
	pki := secMakePKI(t, dir)
	b := secStartBroker(t, dir, port, pki)
	secAddr := b.secured

	// The input of the refused runs exists, so that nothing but the
	// refusal can stop them. Created over PLAINTEXT: the admin listener.
	refusedInput := "sec-refused-shift-events"
	if err := EnsureTopics(context.Background(), &kafka.Client{Addr: kafka.TCP(b.plain), Timeout: 30 * time.Second}, 2, refusedInput); err != nil {
		t.Fatal(err)
	}

	valid := []struct {
		name, mechanism, user, password string
	}{
		{"plain", SASLPlain, secPlainUser, secPlainPassword},
		{"scram-sha-256", SASLScramSHA256, secScramUser, secScramPassword},
		{"scram-sha-512", SASLScramSHA512, secScramUser, secScramPassword},
	}

	// The listener itself, with kafka-go alone: a failure here is the
	// broker's configuration, not the pipeline's.
	t.Run("listener", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(pki.ca)
		client, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range valid {
			t.Run(c.name, func(t *testing.T) {
				ok := &kafka.Client{Addr: kafka.TCP(secAddr), Timeout: 10 * time.Second, Transport: &kafka.Transport{
					TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{client}}, SASL: secMechanism(t, c.mechanism, c.user, c.password),
				}}
				md, err := ok.Metadata(context.Background(), &kafka.MetadataRequest{})
				if err != nil {
					t.Fatalf("metadata over SASL_SSL: %v", err)
				}
				// The broker must advertise the secured listener to clients
				// that came through it, or they would be sent to PLAINTEXT.
				if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(md.Brokers[0].Port)) != secAddr {
					t.Fatalf("brokers %+v, want the one at %s", md.Brokers, secAddr)
				}
				bad := &kafka.Client{Addr: kafka.TCP(secAddr), Timeout: 10 * time.Second, Transport: &kafka.Transport{
					TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{client}}, SASL: secMechanism(t, c.mechanism, c.user, c.password+"-wrong"),
				}}
				if _, err := bad.Metadata(context.Background(), &kafka.MetadataRequest{}); !errors.Is(err, kafka.SASLAuthenticationFailed) {
					t.Fatalf("wrong password: got %v, want %v", err, kafka.SASLAuthenticationFailed)
				}
			})
		}
	})

	for _, c := range valid {
		t.Run("pipeline/"+c.name, func(t *testing.T) {
			sec := Security{
				TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
				SASL: SASLOptions{Mechanism: c.mechanism, Username: c.user, Password: c.password},
			}
			secRunPipeline(t, secAddr, "sec-"+c.name+"-", sec)
		})
	}

	refused := []struct {
		name string
		sec  Security
	}{
		{"wrong-password/plain", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLPlain, Username: secPlainUser, Password: "not-" + secPlainPassword},
		}},
		{"wrong-password/scram-sha-256", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLScramSHA256, Username: secScramUser, Password: "not-" + secScramPassword},
		}},
		{"wrong-password/scram-sha-512", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLScramSHA512, Username: secScramUser, Password: "not-" + secScramPassword},
		}},
		// A PLAIN user is not a SCRAM user: the two stores are separate.
		{"unknown-user/scram-sha-512", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLScramSHA512, Username: secPlainUser, Password: secPlainPassword},
		}},
		// The right credentials, but the certificate is not trusted: the
		// system's roots do not include the test's CA.
		{"untrusted-ca/system-roots", Security{
			TLS:  TLSOptions{Enabled: true, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLScramSHA256, Username: secScramUser, Password: secScramPassword},
		}},
		{"untrusted-ca/other-ca-file", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.otherCAFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLScramSHA256, Username: secScramUser, Password: secScramPassword},
		}},
		// TLS alone (SASL_SSL has no TLS-only mode): a trusted certificate
		// that does not carry the name asked for.
		{"tls/wrong-server-name", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, ServerName: "kafka.invalid", CertFile: pki.clientCert, KeyFile: pki.clientKey},
			SASL: SASLOptions{Mechanism: SASLPlain, Username: secPlainUser, Password: secPlainPassword},
		}},
		// Mutual TLS: the listener requires a client certificate its
		// authorities signed, whatever the SASL credentials.
		{"mtls/no-client-certificate", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile},
			SASL: SASLOptions{Mechanism: SASLScramSHA256, Username: secScramUser, Password: secScramPassword},
		}},
		{"mtls/client-certificate-of-another-ca", Security{
			TLS:  TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.otherClientCert, KeyFile: pki.otherClientKey},
			SASL: SASLOptions{Mechanism: SASLScramSHA256, Username: secScramUser, Password: secScramPassword},
		}},
	}
	for _, c := range refused {
		t.Run("refused/"+c.name, func(t *testing.T) {
			secRunRefused(t, b, refusedInput, c.sec)
		})
	}
}

// secRunPipeline produces a small workload through the secured listener and
// runs the pipeline on it until it has caught up; every valid event must
// be in the sink, and the alerts and dead letters on their topics.
func secRunPipeline(t *testing.T, addr, prefix string, sec Security) {
	ctx := context.Background()
	conn, err := NewConnector([]string{addr}, sec)
	if err != nil {
		t.Fatal(err)
	}
	client := conn.Client(30 * time.Second)
	input := prefix + "shift-events"
	if err := EnsureTopics(ctx, client, 2, input); err != nil {
		t.Fatalf("creating the input over SASL_SSL: %v", err)
	}
	msgs := workloadOf(2)
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: conn.Transport, Topic: input, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: time.Millisecond}
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Key: []byte(m.key), Value: []byte(m.value)}
	}
	if err := w.WriteMessages(ctx, km...); err != nil {
		t.Fatalf("producing over SASL_SSL: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	opts := DefaultOptions(addr)
	opts.InputTopic, opts.AlertsTopic, opts.DLQTopic = input, prefix+"shift-alerts", prefix+"shift-events-dlq"
	opts.Group = prefix + "g"
	opts.BatchMaxEvents = 400
	opts.Security = sec
	opts.Logger = slog.New(slog.NewTextHandler(testLogOut(), nil))
	sink := NewMemorySink()
	began := time.Now()
	runUntil(t, opts, sink, caughtUp(t))
	t.Logf("%d messages through SASL_SSL in %s", len(msgs), time.Since(began).Round(10*time.Millisecond))

	want, bad := map[string]bool{}, 0
	for _, m := range msgs {
		if m.valid {
			want[m.id] = true
		}
		if m.bad != "" {
			bad++
		}
	}
	shifts := sink.Shifts()
	for id := range want {
		if _, ok := shifts[id]; !ok {
			t.Fatalf("%s not stored (%d of %d valid events stored)", id, len(shifts), len(want))
		}
	}
	if len(shifts) != len(want) {
		t.Fatalf("%d shifts stored, want %d", len(shifts), len(want))
	}
	if n := len(sink.Rejects()); n != bad {
		t.Fatalf("%d rejects stored, want %d", n, bad)
	}
	alerts := len(sink.Alerts())
	if alerts == 0 {
		t.Fatal("no alerts: the workload holds planted ones")
	}
	// The pipeline's own writes went through the listener too. A transport
	// of its own: the producer's caches metadata from before the pipeline
	// created these topics.
	conn, err = NewConnector([]string{addr}, sec)
	if err != nil {
		t.Fatal(err)
	}
	client = conn.Client(30 * time.Second)
	for topic, least := range map[string]int{opts.AlertsTopic: alerts, opts.DLQTopic: bad} {
		start, end, err := EndOffsets(ctx, client, topic)
		if err != nil {
			t.Fatalf("%s over SASL_SSL: %v", topic, err)
		}
		n := 0
		for p, e := range end {
			n += int(e - start[p])
		}
		if n < least {
			t.Fatalf("%s holds %d records, want at least %d", topic, n, least)
		}
	}
}

// secRunRefused runs a pipeline the broker refuses: Run must return
// ErrAuthentication within secRefusedWithin, after few attempts.
func secRunRefused(t *testing.T, b *secBroker, input string, sec Security) {
	opts := DefaultOptions(b.secured)
	opts.InputTopic = input
	opts.AlertsTopic, opts.DLQTopic = "sec-refused-shift-alerts", "sec-refused-shift-events-dlq"
	opts.Group = "sec-refused"
	opts.Security = sec
	opts.Logger = slog.New(slog.NewTextHandler(testLogOut(), nil))
	p, err := New(opts, NewMemorySink())
	if err != nil {
		t.Fatalf("New must not connect, so not fail: %v", err)
	}
	logAt := b.logSize(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	began := time.Now()
	go func() { errc <- p.Run(ctx) }()
	select {
	case err = <-errc:
	case <-time.After(secRefusedWithin):
		cancel()
		select {
		case err = <-errc:
		case <-time.After(30 * time.Second):
		}
		t.Fatalf("Run still going %s after a refusal (after cancelling: %v)", secRefusedWithin, err)
	}
	took := time.Since(began)
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("Run returned %v after %s, want an error wrapping ErrAuthentication", err, took.Round(time.Millisecond))
	}
	if !IsAuthError(err) {
		t.Fatalf("IsAuthError(%v) = false", err)
	}
	refusals := b.refusalsSince(t, logAt)
	t.Logf("refused in %s after %d refused connections: %v", took.Round(time.Millisecond), refusals, err)
	if refusals == 0 {
		t.Fatal("the broker logged no refused connection: did the pipeline reach it?")
	}
	if refusals > secMaxRefusals {
		t.Fatalf("%d refused connections before giving up, want at most %d", refusals, secMaxRefusals)
	}
}

func secMechanism(t *testing.T, name, user, password string) sasl.Mechanism {
	t.Helper()
	switch name {
	case SASLPlain:
		return plain.Mechanism{Username: user, Password: password}
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if name == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, password)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("mechanism %q", name)
	return nil
}

type secPKI struct {
	ca                        *x509.Certificate
	caFile, otherCAFile       string
	serverCertFile, serverKey string
	// client certificates (mutual TLS): the CA's, and the other CA's
	clientCert, clientKey           string
	otherClientCert, otherClientKey string
}

// secMakePKI writes a CA, a server certificate it signs for 127.0.0.1 and
// localhost with its PKCS#8 key (the form Kafka's PEM key store reads), and
// a second CA that signed nothing.
func secMakePKI(t *testing.T, dir string) secPKI {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := func() *big.Int {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	writePEM := func(name, typ string, der []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	makeCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: name},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, writePEM(name+".pem", "CERTIFICATE", der, 0o644)
	}
	ca, caKey, caFile := makeCA("stakhanov-test-ca")
	otherCA, otherCAKey, otherCAFile := makeCA("stakhanov-other-ca")
	makeClient := func(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
		key := newKey()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		pk8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(name+".pem", "CERTIFICATE", der, 0o644), writePEM(name+".key", "PRIVATE KEY", pk8, 0o600)
	}
	clientCert, clientKey := makeClient("stakhanov-client", ca, caKey)
	otherClientCert, otherClientKey := makeClient("stranger-client", otherCA, otherCAKey)

	key := newKey()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return secPKI{
		ca: ca, caFile: caFile, otherCAFile: otherCAFile,
		clientCert: clientCert, clientKey: clientKey, otherClientCert: otherClientCert, otherClientKey: otherClientKey,
		serverCertFile: writePEM("server.pem", "CERTIFICATE", der, 0o644),
		serverKey:      writePEM("server.key", "PRIVATE KEY", pk8, 0o600),
	}
}

type secBroker struct {
	plain, secured string
	serverLog      string
}

// secStartBroker starts local-kafka.sh's broker with the SASL_SSL listener
// on port+2 (port 0: on free ports the OS picks) and stops it when the test
// ends.
func secStartBroker(t *testing.T, dir string, port int, pki secPKI) *secBroker {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "deploy", "kafka", "local-kafka.sh"))
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "kafka")
	ports := []string{"KAFKA_PORT=auto", "KAFKA_CONTROLLER_PORT=auto", "KAFKA_SASL_SSL_PORT=auto"}
	if port != 0 {
		ports = []string{"KAFKA_PORT=" + strconv.Itoa(port), "KAFKA_CONTROLLER_PORT=" + strconv.Itoa(port+1), "KAFKA_SASL_SSL_PORT=" + strconv.Itoa(port+2)}
	}
	env := append(append(os.Environ(), ports...), "KAFKA_STATE_DIR="+state,
		"KAFKA_SSL_CERT="+pki.serverCertFile, "KAFKA_SSL_KEY="+pki.serverKey, "KAFKA_SSL_CLIENT_CA="+pki.caFile,
		"KAFKA_PLAIN_USERS="+secPlainUser+":"+secPlainPassword+",bob:bob-secret",
		"KAFKA_SCRAM_USERS="+secScramUser+":"+secScramPassword)
	kafkaSh := func(cmd string) (string, error) {
		c := exec.Command(script, cmd)
		c.Env = env
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			s := stderr.String()
			if len(s) > 3000 {
				s = s[len(s)-3000:]
			}
			return "", fmt.Errorf("local-kafka.sh %s: %w\n%s", cmd, err, s)
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	testenv.KafkaJars(t, func() error { _, err := kafkaSh("fetch"); return err })
	if port != 0 {
		for _, p := range []int{port, port + 1, port + 2} {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
				c.Close()
				t.Fatalf("port %d is in use: set STAKHANOV_SECURITY_PORT to the first of three free ports, or unset it to take free ports from the OS", p)
			}
		}
	}
	b := &secBroker{serverLog: filepath.Join(state, "logs", "server.log")}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(b.serverLog); err == nil {
				s := string(log)
				if len(s) > 4000 {
					s = s[len(s)-4000:]
				}
				t.Logf("end of the broker's log:\n%s", s)
			}
		}
		if _, err := kafkaSh("down"); err != nil {
			t.Log(err)
		}
	})
	began := time.Now()
	if b.plain, err = kafkaSh("up"); err != nil {
		t.Fatal(err)
	}
	// the SASL_SSL port it listens on, as `ports` names it
	out, err := kafkaSh("ports")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "KAFKA_SASL_SSL_PORT="); ok {
			b.secured = "127.0.0.1:" + p
		}
	}
	if b.secured == "" {
		t.Fatalf("local-kafka.sh ports names no SASL_SSL port:\n%s", out)
	}
	t.Logf("broker up in %s: PLAINTEXT %s, SASL_SSL %s", time.Since(began).Round(100*time.Millisecond), b.plain, b.secured)
	return b
}

func (b *secBroker) logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(b.serverLog)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// refusalsSince counts the connections the broker refused (bad
// credentials, failed TLS handshakes) in its log after offset at. The
// broker logs them asynchronously, so wait for the count to settle.
func (b *secBroker) refusalsSince(t *testing.T, at int64) int {
	t.Helper()
	count := func() int {
		f, err := os.Open(b.serverLog)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Seek(at, 0); err != nil {
			t.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Failed authentication with") {
				n++
			}
		}
		return n
	}
	n := count()
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		m := count()
		if m == n && n > 0 {
			break
		}
		n = m
	}
	return n
}
