package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/flightsql"
	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/stakhanov/stakhanov/internal/testpki"
)

const (
	testToken  = "3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a"
	wrongToken = "00000000000000000000000000000000"
)

// TestLiveOptionsCredentials: beyond loopback the endpoint needs a token
// or client certificates, and the refusal names the options to set;
// malformed settings are refused without quoting a token.
func TestLiveOptionsCredentials(t *testing.T) {
	for _, c := range []struct {
		name string
		o    func(*LiveOptions)
		err  error  // nil, ErrNoCredentials or ErrInvalidLiveOptions
		msg  string // the error contains
	}{
		{"loopback, open", func(o *LiveOptions) { o.QueryAddr = "127.0.0.1:0" }, nil, ""},
		{"IPv6 loopback, open", func(o *LiveOptions) { o.QueryAddr = "[::1]:8080" }, nil, ""},
		{"localhost, open", func(o *LiveOptions) { o.QueryAddr = "localhost:8080" }, nil, ""},
		{"off", func(o *LiveOptions) { o.QueryAddr = "off" }, nil, ""},
		{"every interface, open", func(o *LiveOptions) { o.QueryAddr = "0.0.0.0:8080" }, ErrNoCredentials, "--query-token-file"},
		{"every interface, no host", func(o *LiveOptions) { o.QueryAddr = ":8080" }, ErrNoCredentials, "STAKHANOV_ENDPOINTS_QUERY_TOKEN"},
		{"a LAN address, open", func(o *LiveOptions) { o.QueryAddr = "10.1.2.3:8080" }, ErrNoCredentials, "--query-tls-client-ca-file"},
		{"a host name, open", func(o *LiveOptions) { o.QueryAddr = "sink.example:8080" }, ErrNoCredentials, "bind it to 127.0.0.1"},
		{"TLS alone is no credential", func(o *LiveOptions) {
			o.QueryAddr, o.QueryTLS = "0.0.0.0:8080", access.TLSOptions{CertFile: "c.pem", KeyFile: "k.pem"}
		}, ErrNoCredentials, "--query-token-file"},
		{"a token", func(o *LiveOptions) { o.QueryAddr, o.QueryToken = "0.0.0.0:8080", testToken }, nil, ""},
		{"a token file", func(o *LiveOptions) { o.QueryAddr, o.QueryTokenFile = "0.0.0.0:8080", "/run/secrets/token" }, nil, ""},
		{"client certificates", func(o *LiveOptions) {
			o.QueryAddr, o.QueryTLS = "0.0.0.0:8080", access.TLSOptions{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
		}, nil, ""},
		{"a token on loopback too", func(o *LiveOptions) { o.QueryToken = testToken }, nil, ""},
		{"a short token", func(o *LiveOptions) { o.QueryToken = "hunter2hunter2" }, ErrInvalidLiveOptions, "fewer than 16"},
		{"a token with a space", func(o *LiveOptions) { o.QueryToken = "3f1c9a7e5b2d 4c6e8f0a1b3c5d7e9f1a" }, ErrInvalidLiveOptions, "character 13"},
		{"a token and a file", func(o *LiveOptions) { o.QueryToken, o.QueryTokenFile = testToken, "/t" }, ErrInvalidLiveOptions, "give one"},
		{"a key without a certificate", func(o *LiveOptions) { o.QueryTLS.KeyFile = "k.pem" }, ErrInvalidLiveOptions, "both or neither"},
		{"a client CA without TLS", func(o *LiveOptions) {
			o.QueryAddr, o.QueryTLS.ClientCAFile = "0.0.0.0:8080", "ca.pem"
		}, ErrInvalidLiveOptions, "need TLS"},
	} {
		o := DefaultLiveOptions()
		c.o(&o)
		err := o.Validate()
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != nil && (!errors.Is(err, c.err) || !errors.Is(err, ErrInvalidLiveOptions) || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.err, c.msg)
		case err != nil && o.QueryToken != "" && strings.Contains(err.Error(), o.QueryToken):
			t.Errorf("%s: the error quotes the token: %v", c.name, err)
		}
	}
}

// authFixture is a DuckDB file of three shifts, served by startLive with
// o, its log kept at debug level.
type authFixture struct {
	path string
	lv   *live
	logs *testenv.LogBuffer
}

func startAuthFixture(t *testing.T, o LiveOptions) (*authFixture, error) {
	t.Helper()
	f := &authFixture{path: filepath.Join(t.TempDir(), "auth.duckdb"), logs: &testenv.LogBuffer{}}
	store, err := analytics.Open(context.Background(), analytics.DefaultOptions(f.path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	insertShifts(t, store)
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.SnapshotInterval = 0
	if f.lv, err = startLive(context.Background(), o, f.path, store, log); err != nil {
		return f, err
	}
	t.Cleanup(f.lv.stop)
	return f, nil
}

// tokenFile writes tokens to a file of their own.
func tokenFile(t *testing.T, tokens ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "query-token")
	if err := os.WriteFile(p, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEndpointAuthentication: a pipeline's endpoint with a token file and
// TLS from a CA made here, asked by an HTTP client and by this package's
// own clients, each with and without what it needs.
func TestEndpointAuthentication(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "endpoint")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Server(t, "sink", "127.0.0.1", "localhost")
	tokens := tokenFile(t, testToken)
	o := DefaultLiveOptions()
	o.QueryTokenFile = tokens
	o.QueryTLS = access.TLSOptions{CertFile: cert, KeyFile: key}
	f, err := startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	base := f.lv.URL
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("endpoint URL %s, want https on the address the certificate names", base)
	}
	if !strings.Contains(f.logs.String(), `credentials="bearer token" tls=true`) {
		t.Errorf("start not logged with its credentials:\n%s", f.logs.String())
	}
	trusting, err := access.ClientTLSOptions{CAFile: ca.CAFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: trusting}}
	defer hc.CloseIdleConnections()
	queries := func() int { return strings.Count(f.logs.String(), "msg=query ") }
	sqlQuery := "sql=" + url.QueryEscape("SELECT count(*) AS n FROM shifts") + "&format=csv"

	for _, c := range []struct {
		name, method, path string
		headers            map[string]string
		status             int
		body               string // the body contains
	}{
		{"health, no token", "GET", "/healthz", nil, 200, "ok"},
		{"query, no token", "GET", "/v1/query?" + sqlQuery, nil, 401, "no bearer token"},
		{"query, wrong token", "GET", "/v1/query?" + sqlQuery, map[string]string{"Authorization": "Bearer " + wrongToken}, 401, "not one the endpoint accepts"},
		{"query, right token", "GET", "/v1/query?" + sqlQuery, map[string]string{"Authorization": "Bearer " + testToken}, 200, "n\n3\n"},
		{"query, a token in the URL is no token", "GET", "/v1/query?" + sqlQuery + "&access_token=" + testToken, nil, 401, "no bearer token"},
		{"snapshot, no token", "POST", "/v1/snapshot", nil, 401, "STAKHANOV_ENDPOINTS_QUERY_TOKEN"},
		{"snapshot, wrong token", "POST", "/v1/snapshot", map[string]string{"Authorization": "Bearer " + wrongToken}, 401, "not one"},
		{"query from a foreign page", "GET", "/v1/query?" + sqlQuery, map[string]string{"Authorization": "Bearer " + testToken, "Origin": "https://evil.example"}, 403, "another origin"},
		{"snapshot from a foreign page", "POST", "/v1/snapshot", map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://" + strings.TrimPrefix(base, "https://")}, 403, "another origin"},
		{"a cross-site fetch", "POST", "/v1/query?format=csv", map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "cross-site"}, 403, "cross-site"},
		{"own origin", "GET", "/v1/query?" + sqlQuery, map[string]string{"Authorization": "Bearer " + testToken, "Origin": base}, 200, "n\n3\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := queries()
			req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader("SELECT 1"))
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
				t.Fatalf("HTTP %d %q, want %d with %q", resp.StatusCode, body, c.status, c.body)
			}
			if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without WWW-Authenticate: Bearer (%q)", resp.Header.Get("WWW-Authenticate"))
			}
			if c.status != 200 && queries() != before {
				t.Errorf("a refused request ran SQL")
			}
		})
	}
	if _, err := os.Stat(DefaultSnapshotDir(f.path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused snapshot request wrote %s (%v)", DefaultSnapshotDir(f.path), err)
	}

	// this package's clients: the query by the file's name, and explicit
	ctx := context.Background()
	good := ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: ca.CAFile}}
	if u, err := LiveEndpoint(ctx, good, f.path); err != nil || u != base {
		t.Errorf("LiveEndpoint: %q %v, want %s", u, err, base)
	}
	var out bytes.Buffer
	if err := Query(ctx, good, f.path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, &out); err != nil || out.String() != "n\n3\n" {
		t.Errorf("Query with the token file and the CA: %q %v", out.String(), err)
	}
	out.Reset()
	env := ClientOptionsFromEnv(func(k string) (string, bool) {
		return map[string]string{EnvQueryToken: testToken}[k], k == EnvQueryToken
	})
	env.TLS.CAFile = ca.CAFile
	if err := QueryEndpoint(ctx, env, base, "SELECT 42 AS x", analytics.FormatCSV, &out); err != nil || out.String() != "x\n42\n" {
		t.Errorf("QueryEndpoint with $%s: %q %v", EnvQueryToken, out.String(), err)
	}
	// in the sink's own container: its certificate file as the authority
	// (deploy/README.md: kubectl exec … --query-tls-ca-file …/tls.crt)
	own := ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: cert}}
	out.Reset()
	if err := Query(ctx, own, f.path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, &out); err != nil || out.String() != "n\n3\n" {
		t.Errorf("Query trusting the server's own certificate: %q %v", out.String(), err)
	}
	if snap, err := Snapshot(ctx, SnapshotOptions{DuckDB: f.path, Client: good}); err != nil || snap.Tables["shifts"] != 3 {
		t.Errorf("Snapshot: %+v %v", snap, err)
	}

	for _, c := range []struct {
		name     string
		co       ClientOptions
		base     string
		sentinel error
		advice   []string
	}{
		{"no token", ClientOptions{TLS: good.TLS}, base, ErrUnauthorized,
			[]string{"no bearer token: set STAKHANOV_ENDPOINTS_QUERY_TOKEN to the endpoint's token", "--query-token-file", "HTTP 401"}},
		{"a wrong token", ClientOptions{TokenFile: tokenFile(t, wrongToken), TLS: good.TLS}, base, ErrUnauthorized,
			[]string{"the token from the file", "is not one it accepts"}},
		{"the system's authorities", ClientOptions{TokenFile: tokens}, base, ErrTLS,
			[]string{"not signed by the system's authorities", "--query-tls-ca-file"}},
		{"another CA", ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: other.CAFile}}, base, ErrTLS,
			[]string{"not signed by the authorities of " + other.CAFile, `issuer "CN=endpoint test CA"`}},
		{"a name the certificate lacks", ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: ca.CAFile, ServerName: "stakhanov-sink.example"}}, base, ErrTLS,
			[]string{"its certificate is for localhost, 127.0.0.1", "--query-tls-server-name"}},
		{"http to the TLS port", good, strings.Replace(base, "https:", "http:", 1), ErrTLS,
			[]string{"it speaks TLS: use https://"}},
		{"a missing token file", ClientOptions{TokenFile: filepath.Join(dir, "nope")}, base, os.ErrNotExist,
			[]string{"query token: token file"}},
	} {
		err := QueryEndpoint(ctx, c.co, c.base, "SELECT 1", analytics.FormatCSV, io.Discard)
		if !errors.Is(err, c.sentinel) {
			t.Errorf("%s: %v, want %v", c.name, err, c.sentinel)
			continue
		}
		for _, a := range c.advice {
			if !strings.Contains(err.Error(), a) {
				t.Errorf("%s: %q lacks %q", c.name, err, a)
			}
		}
	}
	// finding the endpoint by the file: a TLS failure is said, not hidden
	// behind DuckDB's lock error
	if err := Query(ctx, ClientOptions{TokenFile: tokens}, f.path, "SELECT 1", analytics.FormatCSV, io.Discard); !errors.Is(err, ErrTLS) ||
		!strings.Contains(err.Error(), EndpointFile(f.path)) {
		t.Errorf("Query by the file without the CA: %v", err)
	}
	if _, err := Snapshot(ctx, SnapshotOptions{DuckDB: f.path, Client: ClientOptions{TLS: good.TLS}}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Snapshot without a token: %v", err)
	}

	l := f.logs.String()
	if strings.Contains(l, testToken) || strings.Contains(l, wrongToken) {
		t.Errorf("a token is in the log:\n%s", l)
	}
	if !strings.Contains(l, "refused a request without an accepted token") || !strings.Contains(l, "another origin") {
		t.Errorf("refusals are not logged:\n%s", l)
	}
}

// TestEndpointBeyondLoopback: on every interface the endpoint starts only
// with credentials; with a token and no TLS it warns that the token
// crosses the network in the clear, and still refuses requests without
// it.
func TestEndpointBeyondLoopback(t *testing.T) {
	o := DefaultLiveOptions()
	o.QueryAddr = "0.0.0.0:0"
	f, err := startAuthFixture(t, o)
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "--query-token-file") {
		t.Fatalf("started beyond loopback without credentials: %v", err)
	}
	if _, err := os.Stat(EndpointFile(f.path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused endpoint wrote its endpoint file (%v)", err)
	}

	// the same through Run: refused before anything connects or listens
	ro := DefaultRunOptions("127.0.0.1:1")
	ro.DuckDB.Path = filepath.Join(t.TempDir(), "never.duckdb")
	ro.MetricsAddr = "off"
	ro.Live.QueryAddr = "0.0.0.0:0"
	start := time.Now()
	if _, err := Run(context.Background(), ro); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("Run beyond loopback without credentials: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the refusal took %v", d)
	}
	if _, err := os.Stat(ro.DuckDB.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run refused but created %s", ro.DuckDB.Path)
	}

	o.QueryToken = testToken
	f, err = startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs.String(), "level=WARN msg=\"query endpoint listens beyond this machine without TLS") {
		t.Errorf("no warning of a token in the clear:\n%s", f.logs.String())
	}
	u, err := LiveEndpoint(context.Background(), ClientOptions{}, f.path)
	if err != nil || !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("endpoint file names %q (%v)", u, err)
	}
	var out bytes.Buffer
	if err := QueryEndpoint(context.Background(), ClientOptions{}, u, "SELECT 1 AS one", analytics.FormatCSV, &out); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("without the token: %v", err)
	}
	if err := QueryEndpoint(context.Background(), ClientOptions{Token: testToken}, u, "SELECT 1 AS one", analytics.FormatCSV, &out); err != nil || out.String() != "one\n1\n" {
		t.Errorf("with the token: %q %v", out.String(), err)
	}
	if strings.Contains(f.logs.String(), testToken) {
		t.Errorf("the token is in the log:\n%s", f.logs.String())
	}
}

// TestFlightBeyondLoopback: the Flight SQL server on every interface
// starts only with the endpoint's credentials, refused with the same
// options named; with a token and no TLS it warns, and still refuses
// calls without the token.
func TestFlightBeyondLoopback(t *testing.T) {
	o := DefaultLiveOptions()
	o.FlightAddr = "0.0.0.0:0"
	f, err := startAuthFixture(t, o)
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "endpoints.flight_addr (--flight-addr) 0.0.0.0:0") ||
		!strings.Contains(err.Error(), credentialsAdvice) {
		t.Fatalf("started beyond loopback without credentials: %v", err)
	}
	for _, file := range []string{FlightFile(f.path), EndpointFile(f.path)} {
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused start wrote %s (%v)", file, err)
		}
	}
	// the same through Run, before anything connects or listens
	ro := DefaultRunOptions("127.0.0.1:1")
	ro.DuckDB.Path = filepath.Join(t.TempDir(), "never.duckdb")
	ro.MetricsAddr = "off"
	ro.Live.QueryAddr, ro.Live.FlightAddr = "off", ":0"
	if _, err := Run(context.Background(), ro); !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "--flight-addr") {
		t.Errorf("Run with Flight SQL beyond loopback without credentials: %v", err)
	}
	if _, err := os.Stat(ro.DuckDB.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run refused but created %s", ro.DuckDB.Path)
	}

	o.QueryAddr, o.QueryToken = "off", testToken
	f, err = startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs.String(), "level=WARN msg=\"flight SQL server listens beyond this machine without TLS") {
		t.Errorf("no warning of a token in the clear:\n%s", f.logs.String())
	}
	uri := f.lv.FlightURL
	if !strings.HasPrefix(uri, "grpc://127.0.0.1:") {
		t.Fatalf("Flight SQL URL %s", uri)
	}
	ctx := context.Background()
	var out bytes.Buffer
	if err := QueryFlight(ctx, ClientOptions{}, uri, "SELECT 1 AS one", analytics.FormatCSV, &out); !errors.Is(err, flightsql.ErrUnauthenticated) {
		t.Errorf("without the token: %v", err)
	}
	if err := QueryFlight(ctx, ClientOptions{Token: testToken}, uri, "SELECT 1 AS one", analytics.FormatCSV, &out); err != nil || out.String() != "one\n1\n" {
		t.Errorf("with the token: %q %v", out.String(), err)
	}
	err = QueryFlight(ctx, ClientOptions{Token: testToken}, strings.Replace(uri, "grpc:", "grpc+tls:", 1), "SELECT 1", analytics.FormatCSV, io.Discard)
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "it does not speak TLS: use grpc:// rather than grpc+tls://") {
		t.Errorf("grpc+tls:// to a plaintext server: %v", err)
	}
	if strings.Contains(f.logs.String(), testToken) {
		t.Errorf("the token is in the log:\n%s", f.logs.String())
	}
}

// TestEndpointClientCertificates: client certificates alone are
// credentials enough beyond loopback; a client without one, or with one
// of another authority, is told what to pass.
func TestEndpointClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "endpoint")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Server(t, "sink", "localhost")
	clientCert, clientKey := ca.ClientCert(t, "analyst")
	strangerCert, strangerKey := other.ClientCert(t, "stranger")
	o := DefaultLiveOptions()
	o.QueryAddr, o.FlightAddr = "0.0.0.0:0", "0.0.0.0:0"
	o.QueryTLS = access.TLSOptions{CertFile: cert, KeyFile: key, ClientCAFile: ca.CAFile}
	f, err := startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	// the certificate names localhost, not 127.0.0.1: the endpoint file
	// says localhost, so that a local client verifies it
	if !strings.HasPrefix(f.lv.URL, "https://localhost:") || !strings.HasPrefix(f.lv.FlightURL, "grpc+tls://localhost:") {
		t.Errorf("endpoint URL %s, Flight SQL URL %s, want https://localhost:… and grpc+tls://localhost:…", f.lv.URL, f.lv.FlightURL)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		tls    access.ClientTLSOptions
		advice string // "" for success
	}{
		{"its client", access.ClientTLSOptions{CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey}, ""},
		{"no certificate", access.ClientTLSOptions{CAFile: ca.CAFile}, "--query-tls-cert-file and --query-tls-key-file"},
		{"a stranger's", access.ClientTLSOptions{CAFile: ca.CAFile, CertFile: strangerCert, KeyFile: strangerKey}, "refused the client certificate " + strangerCert},
	} {
		for _, through := range []struct {
			name  string
			query func(io.Writer) error
		}{
			{"endpoint", func(w io.Writer) error {
				return Query(ctx, ClientOptions{TLS: c.tls}, f.path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, w)
			}},
			{"Flight SQL", func(w io.Writer) error {
				return QueryFlight(ctx, ClientOptions{TLS: c.tls}, f.lv.FlightURL, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, w)
			}},
		} {
			var out bytes.Buffer
			err := through.query(&out)
			if c.advice == "" {
				if err != nil || out.String() != "n\n3\n" {
					t.Errorf("%s, %s: %q %v", c.name, through.name, out.String(), err)
				}
				continue
			}
			if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), c.advice) {
				t.Errorf("%s, %s: %v, want ErrTLS saying %q", c.name, through.name, err, c.advice)
			}
		}
	}
}

// TestEndpointRealClients: curl, Python's urllib and Python's ADBC Flight
// SQL driver, as analysts use them, against the endpoint and the Flight
// SQL server with one token and one certificate: the commands of
// docs/live-reading.md.
func TestEndpointRealClients(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "endpoint")
	cert, key := ca.Server(t, "sink", "127.0.0.1", "localhost")
	tokens := tokenFile(t, testToken)
	o := DefaultLiveOptions()
	o.QueryTokenFile = tokens
	o.QueryTLS = access.TLSOptions{CertFile: cert, KeyFile: key}
	f, err := startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	base := f.lv.URL
	sql := "SELECT count(*) AS n FROM shifts"

	t.Run("curl", func(t *testing.T) {
		curl := testenv.Command(t, "curl", "install curl (apt-get install curl; make deps)")
		// the header from a file, as the docs advise: a token in curl's
		// arguments is visible to every user of the machine
		header := filepath.Join(dir, "auth-header")
		if err := os.WriteFile(header, []byte("Authorization: Bearer "+testToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []string
			code string // HTTP status curl reports
			body string
			exit int
		}{
			{"token and CA", []string{"--cacert", ca.CAFile, "-H", "@" + header, "-G", base + "/v1/query", "--data-urlencode", "sql=" + sql, "-d", "format=csv"}, "200", "n\n3\n", 0},
			{"POST", []string{"--cacert", ca.CAFile, "-H", "@" + header, base + "/v1/query?format=csv", "--data-binary", sql}, "200", "n\n3\n", 0},
			{"no token", []string{"--cacert", ca.CAFile, "-G", base + "/v1/query", "--data-urlencode", "sql=" + sql}, "401", "no bearer token", 0},
			{"wrong token", []string{"--cacert", ca.CAFile, "-H", "Authorization: Bearer " + wrongToken, "-X", "POST", base + "/v1/snapshot"}, "401", "not one the endpoint accepts", 0},
			{"foreign origin", []string{"--cacert", ca.CAFile, "-H", "@" + header, "-H", "Origin: https://evil.example", base + "/v1/query?format=csv", "--data-binary", sql}, "403", "another origin", 0},
			// curl exits 60: "SSL certificate problem: unable to get local issuer certificate"
			{"the system's authorities", []string{base + "/healthz"}, "000", "", 60},
		} {
			args := append([]string{"-sS", "-o", "-", "-w", "\n%{http_code}"}, c.args...)
			cmd := exec.Command(curl, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			outb, err := cmd.Output()
			exit := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := string(outb)
			i := strings.LastIndexByte(out, '\n')
			body, code := out[:max(i, 0)], out[i+1:]
			if exit != c.exit || code != c.code || !strings.Contains(body, c.body) {
				t.Errorf("curl %s: exit %d, HTTP %s, %q (%s); want exit %d, HTTP %s with %q", c.name, exit, code, body, stderr.String(), c.exit, c.code, c.body)
			}
		}
	})

	t.Run("python urllib", func(t *testing.T) {
		py := testenv.Command(t, "python3", "install Python 3")
		script := `
import json, os, ssl, sys, urllib.error, urllib.parse, urllib.request
base, ca = sys.argv[1], sys.argv[2]
token = open(os.environ["STAKHANOV_ENDPOINTS_QUERY_TOKEN_FILE"]).readline().strip()
ctx = ssl.create_default_context(cafile=ca)
q = urllib.parse.quote("SELECT count(*) AS n FROM shifts")
req = urllib.request.Request(f"{base}/v1/query?format=csv&sql={q}", headers={"Authorization": f"Bearer {token}"})
with urllib.request.urlopen(req, context=ctx) as r:
    print("with the token:", r.status, repr(r.read().decode()))
try:
    urllib.request.urlopen(f"{base}/v1/query?format=csv&sql={q}", context=ctx)
except urllib.error.HTTPError as e:
    print("without:", e.code, e.headers["WWW-Authenticate"], json.load(e)["error"].split(":")[0])
try:
    urllib.request.urlopen(f"{base}/healthz")
except urllib.error.URLError as e:
    print("untrusted:", type(e.reason).__name__)
`
		cmd := exec.Command(py, "-c", script, base, ca.CAFile)
		cmd.Env = append(os.Environ(), EnvQueryTokenFile+"="+tokens)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := "with the token: 200 'n\\n3\\n'\n" +
			"without: 401 Bearer realm=\"stakhanov\" no bearer token\n" +
			"untrusted: SSLCertVerificationError\n"
		if string(out) != want {
			t.Errorf("python:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("python adbc and urllib, one token", func(t *testing.T) {
		py := os.Getenv("STAKHANOV_PYTHON")
		if py == "" {
			testenv.Missing(t, "STAKHANOV_PYTHON is not set: it names a Python with adbc-driver-flightsql, pyarrow and polars",
				"make test sets up notebooks/requirements.txt's virtualenv under ~/.cache/stakhanov and sets it")
		}
		// docs/live-reading.md's way: the address files, one token file,
		// one authority, for both the endpoint and Flight SQL
		script := `
import os, ssl, sys, urllib.parse, urllib.request
import adbc_driver_flightsql.dbapi as flight_sql
import polars as pl
from adbc_driver_flightsql import DatabaseOptions
duckdb, ca = sys.argv[1], sys.argv[2]
token = open(os.environ["STAKHANOV_ENDPOINTS_QUERY_TOKEN_FILE"]).readline().strip()
uri = open(duckdb + ".flight").read().strip()
def connect(tok):
    return flight_sql.connect(uri, db_kwargs={
        DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + tok,
        DatabaseOptions.TLS_ROOT_CERTS.value: open(ca).read(),
    }, autocommit=True)
with connect(token) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM shifts")
        table = cur.fetch_arrow_table()
    df = pl.from_arrow(table)
print("flight:", uri.split(":")[0], df["n"][0])
try:
    with connect("0" * 32) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetch_arrow_table()
    print("wrong token: accepted")
except Exception as e:
    print("wrong token:", "wrong token" in str(e))
u = open(duckdb + ".endpoint").read().strip()
q = urllib.parse.quote("SELECT count(*) AS n FROM shifts")
req = urllib.request.Request(f"{u}/v1/query?format=csv&sql={q}", headers={"Authorization": f"Bearer {token}"})
with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca)) as r:
    print("endpoint:", u.split(":")[0], repr(r.read().decode()))
`
		cmd := exec.Command(py, "-c", script, f.path, ca.CAFile)
		cmd.Env = append(os.Environ(), EnvQueryTokenFile+"="+tokens)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v\n%s%s", err, out, stderr.String())
		}
		want := "flight: grpc+tls 3\nwrong token: True\nendpoint: https 'n\\n3\\n'\n"
		if string(out) != want {
			t.Errorf("python:\n%s\nwant:\n%s", out, want)
		}
	})
	if strings.Contains(f.logs.String(), testToken) || strings.Contains(f.logs.String(), wrongToken) {
		t.Errorf("a token is in the log:\n%s", f.logs.String())
	}
}

// TestTokenRotation: a token rotated in the file works at once through
// the running endpoint, the old one stops working, without a restart.
func TestTokenRotation(t *testing.T) {
	tokens := tokenFile(t, testToken)
	o := DefaultLiveOptions()
	o.QueryTokenFile = tokens
	f, err := startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	status := func(tok string) int {
		err := QueryEndpoint(ctx, ClientOptions{Token: tok}, f.lv.URL, "SELECT 1", analytics.FormatCSV, io.Discard)
		var ee *EndpointError
		if errors.As(err, &ee) {
			return ee.Status
		}
		if err != nil {
			t.Fatal(err)
		}
		return 200
	}
	// the Flight SQL server reads the same file: the same token, rotated
	// with it
	flight := func(tok string) bool {
		err := QueryFlight(ctx, ClientOptions{Token: tok}, f.lv.FlightURL, "SELECT 1", analytics.FormatCSV, io.Discard)
		if err != nil && !errors.Is(err, flightsql.ErrUnauthenticated) {
			t.Fatal(err)
		}
		return err == nil
	}
	if status(testToken) != 200 || status(wrongToken) != 401 || !flight(testToken) || flight(wrongToken) {
		t.Fatal("before the rotation")
	}
	rotate := func(tokens ...string) {
		tmp := filepath.Join(filepath.Dir(f.path), "next-token")
		os.WriteFile(tmp, []byte(strings.Join(tokens, "\n")+"\n"), 0o600)
		if err := os.Rename(tmp, o.QueryTokenFile); err != nil {
			t.Fatal(err)
		}
	}
	rotate(wrongToken, testToken)
	deadline := time.Now().Add(10 * time.Second)
	for status(wrongToken) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the new token not accepted within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for !flight(wrongToken) {
		if time.Now().After(deadline) {
			t.Fatal("the new token not accepted by Flight SQL within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rotate(wrongToken)
	for status(testToken) != 401 || flight(testToken) {
		if time.Now().After(deadline) {
			t.Fatal("the old token still accepted after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFlightAuthentication: the pipeline's Arrow Flight SQL server asks
// for the endpoint's credentials, from the same token file, and serves
// TLS with the endpoint's certificate; `stakhanov query --flight`
// (QueryFlight) sends the token and trusts the authority from the same
// client options as for the endpoint, and says what to set when refused.
func TestFlightAuthentication(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "endpoint")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Server(t, "sink", "127.0.0.1", "localhost")
	tokens := tokenFile(t, testToken)
	o := DefaultLiveOptions()
	o.QueryTokenFile = tokens
	o.QueryTLS = access.TLSOptions{CertFile: cert, KeyFile: key}
	f, err := startAuthFixture(t, o)
	if err != nil {
		t.Fatal(err)
	}
	uri := f.lv.FlightURL
	if !strings.HasPrefix(uri, "grpc+tls://127.0.0.1:") {
		t.Fatalf("Flight SQL URL %s, want grpc+tls on the address the certificate names", uri)
	}
	if b, err := os.ReadFile(FlightFile(f.path)); err != nil || strings.TrimSpace(string(b)) != uri {
		t.Errorf("%s holds %q (%v), want %s", FlightFile(f.path), b, err, uri)
	}
	if !strings.Contains(f.logs.String(), `msg="serving Arrow Flight SQL" url=`+uri) ||
		!strings.Contains(f.logs.String(), `credentials="bearer token" tls=true`) {
		t.Errorf("Flight SQL start not logged with its credentials:\n%s", f.logs.String())
	}
	queries := func() int { return strings.Count(f.logs.String(), `msg="flight SQL query"`) }
	ctx := context.Background()
	const sql = "SELECT count(*) AS n FROM shifts"

	good := ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: ca.CAFile}}
	env := ClientOptionsFromEnv(func(k string) (string, bool) {
		return map[string]string{EnvQueryToken: testToken}[k], k == EnvQueryToken
	})
	env.TLS.CAFile = ca.CAFile
	for _, c := range []struct {
		name string
		co   ClientOptions
		uri  string
	}{
		{"the token file and the CA", good, uri},
		{"$" + EnvQueryToken, env, uri},
		{"the server's own certificate as the CA", ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: cert}}, uri},
		{"by the name localhost", good, strings.Replace(uri, "127.0.0.1", "localhost", 1)},
	} {
		var out bytes.Buffer
		if err := QueryFlight(ctx, c.co, c.uri, sql, analytics.FormatCSV, &out); err != nil || out.String() != "n\n3\n" {
			t.Errorf("%s: %q %v", c.name, out.String(), err)
		}
	}
	// the endpoint takes the same token, over the same certificate
	var out bytes.Buffer
	if err := QueryEndpoint(ctx, good, f.lv.URL, sql, analytics.FormatCSV, &out); err != nil || out.String() != "n\n3\n" {
		t.Errorf("the endpoint with the same options: %q %v", out.String(), err)
	}

	for _, c := range []struct {
		name     string
		co       ClientOptions
		uri      string
		sentinel error
		advice   []string
	}{
		{"no token", ClientOptions{TLS: good.TLS}, uri, flightsql.ErrUnauthenticated,
			[]string{"no credentials: set STAKHANOV_ENDPOINTS_QUERY_TOKEN to the endpoint's token", "--query-token-file", "(Unauthenticated)"}},
		{"a wrong token", ClientOptions{TokenFile: tokenFile(t, wrongToken), TLS: good.TLS}, uri, flightsql.ErrUnauthenticated,
			[]string{"wrong token: the token from the file", "is not one it accepts"}},
		{"the system's authorities", ClientOptions{TokenFile: tokens}, uri, ErrTLS,
			[]string{"not signed by the system's authorities", "--query-tls-ca-file"}},
		{"another CA", ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: other.CAFile}}, uri, ErrTLS,
			[]string{"not signed by the authorities of " + other.CAFile}},
		{"a name the certificate lacks", ClientOptions{TokenFile: tokens, TLS: access.ClientTLSOptions{CAFile: ca.CAFile, ServerName: "stakhanov-sink.example"}}, uri, ErrTLS,
			[]string{"--query-tls-server-name"}},
		{"grpc:// to the TLS port", good, strings.Replace(uri, "grpc+tls:", "grpc:", 1), ErrTLS,
			[]string{"use grpc+tls://"}},
		{"a missing token file", ClientOptions{TokenFile: filepath.Join(dir, "nope")}, uri, os.ErrNotExist,
			[]string{"query token: token file"}},
	} {
		before := queries()
		err := QueryFlight(ctx, c.co, c.uri, sql, analytics.FormatCSV, io.Discard)
		if !errors.Is(err, c.sentinel) {
			t.Errorf("%s: %v, want %v", c.name, err, c.sentinel)
			continue
		}
		for _, a := range c.advice {
			if !strings.Contains(err.Error(), a) {
				t.Errorf("%s: %q lacks %q", c.name, err, a)
			}
		}
		if queries() != before {
			t.Errorf("%s: a refused call ran SQL", c.name)
		}
	}

	l := f.logs.String()
	if strings.Contains(l, testToken) || strings.Contains(l, wrongToken) {
		t.Errorf("a token is in the log:\n%s", l)
	}
	if !strings.Contains(l, "flight SQL: refused a call without an accepted token") {
		t.Errorf("refusals are not logged:\n%s", l)
	}
}
