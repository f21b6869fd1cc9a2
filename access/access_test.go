package access

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/internal/testpki"
)

const (
	goodToken  = "0123456789abcdef0123456789abcdef"
	otherToken = "fedcba9876543210fedcba9876543210"
)

func TestValidToken(t *testing.T) {
	for _, c := range []struct {
		tok string
		ok  bool
	}{
		{goodToken, true},
		{"abcdefghijklmnop", true}, // exactly MinTokenLength
		{"abcdefghijklmno", false}, // one short
		{"", false},
		{"abcdefgh ijklmnopq", false},
		{"abcdefghijklmnopq\t", false},
		{"abcdefghijklmnöpq", false},
		{"a+b/c=d-e_f.g~h!i*j", true},
	} {
		err := ValidToken(c.tok)
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.tok, err)
		}
		if err != nil && (!errors.Is(err, ErrMalformedToken) || (len(c.tok) > 3 && strings.Contains(err.Error(), c.tok))) {
			t.Errorf("%q: %v: want ErrMalformedToken, without the token", c.tok, err)
		}
	}
}

func TestParseTokens(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string
	}{
		{goodToken + "\n", []string{goodToken}},
		{goodToken, []string{goodToken}},
		{"  " + goodToken + "  \r\n", []string{goodToken}},
		{"# rotated on Monday\n\n" + otherToken + "\n" + goodToken + "\n", []string{otherToken, goodToken}},
		{"", nil},
		{"# only a comment\n", nil},
		{goodToken + "\nshort\n", nil},
	} {
		got, err := ParseTokens([]byte(c.file))
		if c.want == nil {
			if err == nil || !errors.Is(err, ErrMalformedToken) {
				t.Errorf("%q: %v, %v: want ErrMalformedToken", c.file, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%q: %v %v, want %v", c.file, got, err, c.want)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	// through a rename, as a Secret volume and an editor's save do
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestTokensCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, file, otherToken+"\n"+goodToken+"\n")
	fromFile, err := NewTokens(TokenOptions{File: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	literal, err := NewTokens(TokenOptions{Token: goodToken}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, presented string
		literal, file   error
	}{
		{"none", "", ErrNoToken, ErrNoToken},
		{"right", goodToken, nil, nil},
		{"the file's other", otherToken, ErrWrongToken, nil},
		{"wrong", "0123456789abcdef0123456789abcdeX", ErrWrongToken, ErrWrongToken},
		{"a prefix", goodToken[:20], ErrWrongToken, ErrWrongToken},
		{"longer", goodToken + "0", ErrWrongToken, ErrWrongToken},
		{"case", strings.ToUpper(goodToken), ErrWrongToken, ErrWrongToken},
	} {
		if err := literal.Check(c.presented); !errors.Is(err, c.literal) || (c.literal == nil && err != nil) {
			t.Errorf("%s, the literal token: %v, want %v", c.name, err, c.literal)
		}
		if err := fromFile.Check(c.presented); !errors.Is(err, c.file) || (c.file == nil && err != nil) {
			t.Errorf("%s, the file: %v, want %v", c.name, err, c.file)
		}
	}

	for _, c := range []struct {
		o    TokenOptions
		want string
	}{
		{TokenOptions{}, "no token"},
		{TokenOptions{Token: goodToken, File: file}, "give one"},
		{TokenOptions{Token: "short"}, "fewer than 16"},
		{TokenOptions{File: filepath.Join(t.TempDir(), "missing")}, "no such file"},
		{TokenOptions{File: filepath.Join(t.TempDir())}, "is a directory"},
	} {
		if _, err := NewTokens(c.o, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

// TestTokenFileReload: a token rotated in the file is accepted, and the
// one removed refused, within the recheck interval, without a restart; a
// file that goes away refuses everything until it is back.
func TestTokenFileReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, file, goodToken+"\n")
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	tk, err := NewTokens(TokenOptions{File: file, Recheck: 10 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5 s: %s", what)
			}
		}
	}
	if err := tk.Check(otherToken); !errors.Is(err, ErrWrongToken) {
		t.Fatalf("before the rotation: %v", err)
	}
	// rotation, step 1: both
	writeFile(t, file, otherToken+"\n"+goodToken+"\n")
	eventually("the new token accepted", func() bool { return tk.Check(otherToken) == nil })
	if err := tk.Check(goodToken); err != nil {
		t.Errorf("the old token during the rotation: %v", err)
	}
	// step 2: the new one only
	writeFile(t, file, otherToken+"\n")
	eventually("the old token refused", func() bool { return errors.Is(tk.Check(goodToken), ErrWrongToken) })

	// gone: refused, whatever the token
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	eventually("refused without the file", func() bool { return errors.Is(tk.Check(otherToken), ErrTokenFile) })
	// an unusable file is no better
	writeFile(t, file, "too short\n")
	time.Sleep(30 * time.Millisecond)
	if err := tk.Check(otherToken); !errors.Is(err, ErrTokenFile) {
		t.Errorf("a file of a malformed token: %v", err)
	}
	writeFile(t, file, otherToken+"\n")
	eventually("accepted once the file is back", func() bool { return tk.Check(otherToken) == nil })

	mu.Lock()
	l := logs.String()
	mu.Unlock()
	for _, want := range []string{"token file changed", "cannot be read", "readable again"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, goodToken) || strings.Contains(l, otherToken) {
		t.Errorf("a token is logged:\n%s", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestGuard: what reaches the endpoint, what is refused with which
// status, and that the handler behind it (where SQL would run) never sees
// a refused request or a token.
func TestGuard(t *testing.T) {
	tk, err := NewTokens(TokenOptions{Token: goodToken}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	var ran []string
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ran = append(ran, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, "result")
	})
	h := Guard(inner, GuardOptions{
		Tokens:    tk,
		Open:      func(r *http.Request) bool { return r.Method == http.MethodGet && r.URL.Path == "/healthz" },
		TokenHint: "set THE_TOKEN",
		Logger:    slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	own := srv.URL // http://127.0.0.1:port

	for _, c := range []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		www     string // WWW-Authenticate must contain
		msg     string // the error must contain
	}{
		{"no token", "/v1/query", nil, 401, `Bearer realm="stakhanov"`, "no bearer token: set THE_TOKEN"},
		{"wrong token", "/v1/query", map[string]string{"Authorization": "Bearer " + otherToken}, 401, `error="invalid_token"`, "not one the endpoint accepts"},
		{"empty bearer", "/v1/query", map[string]string{"Authorization": "Bearer "}, 401, `Bearer realm=`, "no bearer token"},
		{"basic", "/v1/query", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, `error="invalid_request"`, "Basic, not a Bearer token"},
		{"right token", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken}, 200, "", ""},
		{"scheme in lower case", "/v1/query", map[string]string{"Authorization": "bearer " + goodToken}, 200, "", ""},
		{"snapshot without", "/v1/snapshot", nil, 401, "Bearer", "no bearer token"},
		{"health is open", "/healthz", nil, 200, "", ""},
		{"own origin", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Origin": own}, 200, "", ""},
		{"foreign origin, right token", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Origin": "https://evil.example"}, 403, "", "another origin"},
		{"foreign origin, no token", "/v1/snapshot", map[string]string{"Origin": "http://evil.example"}, 403, "", "Origin \"http://evil.example\""},
		{"origin of another port", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Origin": "http://127.0.0.1:1"}, 403, "", "another origin"},
		{"origin of another scheme", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Origin": strings.Replace(own, "http:", "https:", 1)}, 403, "", "another origin"},
		{"origin null", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Origin": "null"}, 403, "", "another origin"},
		{"cross-site fetch", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Sec-Fetch-Site": "cross-site"}, 403, "", "Sec-Fetch-Site: cross-site"},
		{"same-site fetch", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Sec-Fetch-Site": "same-site"}, 403, "", "same-site"},
		{"same-origin fetch", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Sec-Fetch-Site": "same-origin", "Origin": own}, 200, "", ""},
		{"typed into the address bar", "/v1/query", map[string]string{"Authorization": "Bearer " + goodToken, "Sec-Fetch-Site": "none"}, 200, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			ran = nil
			mu.Unlock()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+c.path, strings.NewReader("SELECT 1"))
			if c.path == "/healthz" {
				req.Method = http.MethodGet
			}
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			got := ran
			mu.Unlock()
			if resp.StatusCode != c.status {
				t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, body, c.status)
			}
			if c.status != 200 {
				var eb ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || !strings.Contains(eb.Error, c.msg) {
					t.Errorf("body %s (%v), want an error containing %q", body, err, c.msg)
				}
				if wa := resp.Header.Get("WWW-Authenticate"); !strings.Contains(wa, c.www) || (c.status != 401 && wa != "") {
					t.Errorf("WWW-Authenticate %q, want %q", wa, c.www)
				}
				if len(got) != 0 {
					t.Errorf("the endpoint ran a refused request: %v", got)
				}
				return
			}
			if len(got) != 1 || got[0] != c.path+" " {
				t.Errorf("the endpoint saw %q, want the path without an Authorization header", got)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), goodToken) || strings.Contains(logs.String(), otherToken) {
		t.Errorf("a token is logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "another origin") || !strings.Contains(logs.String(), "without an accepted token") {
		t.Errorf("refusals not logged:\n%s", logs.String())
	}
}

// TestGuardTokenFileGone: a token file that cannot be read refuses with
// 503, the server's fault, not 401.
func TestGuardTokenFileGone(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, file, goodToken)
	tk, err := NewTokens(TokenOptions{File: file, Recheck: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), GuardOptions{Tokens: tk, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	os.Remove(file)
	time.Sleep(5 * time.Millisecond)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/query", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("HTTP %d, want 503", resp.StatusCode)
	}
}

// tlsServer serves "ok" with s's configuration, as the endpoint does
// (httptest's StartTLS would put its own certificate first).
func tlsServer(t *testing.T, s *ServerTLS) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: s.Config(),
		ErrorLog:  slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func get(t *testing.T, url string, o ClientTLSOptions) (*x509.Certificate, error) {
	t.Helper()
	cfg, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	return resp.TLS.PeerCertificates[0], nil
}

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "endpoint")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Server(t, "server", "127.0.0.1", "localhost")
	s, err := NewServerTLS(TLSOptions{CertFile: cert, KeyFile: key, Recheck: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := tlsServer(t, s)

	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	for _, c := range []struct {
		name string
		o    ClientTLSOptions
		want any // nil, or the error type
	}{
		{"trusting its CA", ClientTLSOptions{CAFile: ca.CAFile}, nil},
		{"trusting the system's", ClientTLSOptions{}, &unknown},
		{"trusting another CA", ClientTLSOptions{CAFile: other.CAFile}, &unknown},
		{"by a name it lacks", ClientTLSOptions{CAFile: ca.CAFile, ServerName: "stakhanov-sink.example"}, &hostname},
		{"by a name it has", ClientTLSOptions{CAFile: ca.CAFile, ServerName: "localhost"}, nil},
	} {
		_, err := get(t, srv, c.o)
		switch want := c.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		case *x509.UnknownAuthorityError:
			if !errors.As(err, want) {
				t.Errorf("%s: %v, want an unknown authority", c.name, err)
			}
		case *x509.HostnameError:
			if !errors.As(err, want) {
				t.Errorf("%s: %v, want a hostname error", c.name, err)
			}
		}
	}

	// a renewed certificate is served without a restart
	nextCert, nextKey := ca.Server(t, "renewed", "127.0.0.1")
	for _, p := range [][2]string{{nextKey, key}, {nextCert, cert}} {
		data, _ := os.ReadFile(p[0])
		writeFile(t, p[1], string(data))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaf, err := get(t, srv, ClientTLSOptions{CAFile: ca.CAFile})
		if err == nil && leaf.Subject.CommonName == "renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served: %v %v", leaf, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// a half-done rotation keeps the last good one
	writeFile(t, key, "not a key")
	time.Sleep(30 * time.Millisecond)
	if leaf, err := get(t, srv, ClientTLSOptions{CAFile: ca.CAFile}); err != nil || leaf.Subject.CommonName != "renewed" {
		t.Errorf("during a broken rotation: %v %v", leaf, err)
	}

	// what fails at start, each naming the problem
	expired, expiredKey := ca.Issue(t, testpki.Spec{Name: "expired", Hosts: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	future, futureKey := ca.Issue(t, testpki.Spec{Name: "future", Hosts: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	okCert, okKey := ca.Server(t, "ok", "127.0.0.1")
	_, otherKey := ca.Server(t, "another", "127.0.0.1")
	for _, c := range []struct {
		o    TLSOptions
		want string
	}{
		{TLSOptions{CertFile: expired, KeyFile: expiredKey}, "expired at"},
		{TLSOptions{CertFile: future, KeyFile: futureKey}, "not valid before"},
		{TLSOptions{CertFile: okCert, KeyFile: otherKey}, "private key does not match public key"},
		{TLSOptions{CertFile: okCert, KeyFile: filepath.Join(dir, "missing.pem")}, "no such file"},
		{TLSOptions{CertFile: okCert}, "give both"},
		{TLSOptions{CertFile: okCert, KeyFile: okKey, ClientCAFile: okKey}, "no PEM certificate"},
		{TLSOptions{ClientCAFile: ca.CAFile}, "need TLS"},
	} {
		if _, err := NewServerTLS(c.o, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

// TestClientCertificates: with a client CA, only clients with a
// certificate it signed get through the handshake.
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "endpoint")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Server(t, "server", "127.0.0.1")
	clientCert, clientKey := ca.ClientCert(t, "analyst")
	strangerCert, strangerKey := other.ClientCert(t, "stranger")
	s, err := NewServerTLS(TLSOptions{CertFile: cert, KeyFile: key, ClientCAFile: ca.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := tlsServer(t, s)
	for _, c := range []struct {
		name string
		o    ClientTLSOptions
		ok   bool
	}{
		{"its client", ClientTLSOptions{CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey}, true},
		{"no certificate", ClientTLSOptions{CAFile: ca.CAFile}, false},
		{"another CA's", ClientTLSOptions{CAFile: ca.CAFile, CertFile: strangerCert, KeyFile: strangerKey}, false},
	} {
		_, err := get(t, srv, c.o)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		var cfgErr *tls.CertificateVerificationError
		if err != nil && errors.As(err, &cfgErr) {
			t.Errorf("%s: the client refused the server (%v); the server should refuse the client", c.name, err)
		}
	}
}
