package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/config"
)

// ClientOptions say how `query`, `snapshot` and `export` reach a query
// endpoint, and `query --flight` a Flight SQL server: the token they send
// and the TLS they speak, the same for both, as the pipeline asks both
// for the same. The zero value sends no token and trusts the system's
// authorities.
type ClientOptions struct {
	// Token is sent as a bearer token. Default "": none.
	Token string
	// TokenFile holds the token to send: its first (access.ParseTokens),
	// the file the endpoint reads being fine. It wins over Token.
	TokenFile string
	// TLS: the authorities to trust, a client certificate, the name the
	// endpoint's certificate must carry.
	TLS access.ClientTLSOptions
}

// The variables clients read their token from: the same as the server's
// options, so that a client in the server's environment (a container's
// healthcheck, kubectl exec) sends the token the server requires.
var (
	EnvQueryToken     = config.EnvName("endpoints.query_token")
	EnvQueryTokenFile = config.EnvName("endpoints.query_token_file")
)

// ClientOptionsFromEnv returns the token settings of the environment
// (lookup is os.LookupEnv when nil).
func ClientOptionsFromEnv(lookup func(string) (string, bool)) ClientOptions {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var o ClientOptions
	o.Token, _ = lookup(EnvQueryToken)
	o.TokenFile, _ = lookup(EnvQueryTokenFile)
	return o
}

// ErrUnauthorized: the endpoint refused the request's credentials (HTTP
// 401).
var ErrUnauthorized = errors.New("the endpoint requires a token")

// endpointClient is ClientOptions made ready: the token read, the TLS
// configured.
type endpointClient struct {
	http      *http.Client
	token     string
	tokenFrom string // where the token came from, for advice
	tls       access.ClientTLSOptions
}

// readToken returns the token to send ("" for none) and where it came
// from, for advice.
func (o ClientOptions) readToken() (token, from string, err error) {
	switch {
	case o.TokenFile != "":
		toks, err := access.ReadTokenFile(o.TokenFile)
		if err != nil {
			return "", "", fmt.Errorf("query token: %w", err)
		}
		return toks[0], "the file " + o.TokenFile, nil
	case o.Token != "":
		if err := access.ValidToken(o.Token); err != nil {
			return "", "", fmt.Errorf("query token (%s): %w", EnvQueryToken, err)
		}
		return o.Token, "$" + EnvQueryToken, nil
	}
	return "", "", nil
}

// open reads the token file and the TLS files now, so that a missing one
// is reported as such, not as a refusal.
func (o ClientOptions) open() (*endpointClient, error) {
	c := &endpointClient{tls: o.TLS}
	var err error
	if c.token, c.tokenFrom, err = o.readToken(); err != nil {
		return nil, err
	}
	cfg, err := o.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("query endpoint: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// HTTP/1.1 only: results stream as well, and a refused handshake
	// reads as one error rather than HTTP/2's own.
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := cfg.Clone()
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		conn := tls.Client(raw, tc)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return alertConn{conn}, nil
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// alertConn surfaces the alert of a server that refused the client's
// certificate. In TLS 1.3 the server judges it after the client has
// finished its handshake, so the refusal arrives as an alert on the
// connection, and the request written meanwhile can fail first with a
// broken pipe or a reset: then the alert, already received, is the error
// worth reporting.
type alertConn struct{ *tls.Conn }

func (c alertConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		_ = c.Conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, rerr := c.Conn.Read(make([]byte, 1)); rerr != nil && strings.Contains(rerr.Error(), "remote error: tls:") {
			return n, rerr
		}
	}
	return n, err
}

// do sends req with the token, and turns a failure to connect into advice.
func (c *endpointClient) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.explain(req.URL.Scheme+"://"+req.URL.Host, err)
	}
	return resp, nil
}

// close lets the connections go.
func (c *endpointClient) close() { c.http.CloseIdleConnections() }

// ErrTLS wraps a TLS failure between a client and an endpoint, explained.
var ErrTLS = errors.New("TLS with the endpoint failed")

// explain says what to do about a failure to reach base.
func (c *endpointClient) explain(base string, err error) error {
	advice := tlsAdvice(err, c.tls, "http://", "https://")
	if advice == "" {
		return fmt.Errorf("query endpoint %s: %w", base, err)
	}
	return fmt.Errorf("query endpoint %s: %s: %w: %w", base, advice, ErrTLS, err)
}

// tlsAdvice says what to do about err, a failure of TLS between a client
// with o and a server whose URLs start with plain or secure; "" when err
// is no TLS failure. The certificate errors are matched by type where
// the client's TLS reports them (HTTP), and by their text where they
// arrive as a message (gRPC's status).
func tlsAdvice(err error, o access.ClientTLSOptions, plain, secure string) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	msg := err.Error()
	unknownAdvice := func(cert string) string {
		who := "the system's authorities"
		if o.CAFile != "" {
			who = "the authorities of " + o.CAFile
		}
		return fmt.Sprintf("its certificate%s is not signed by %s: pass --query-tls-ca-file with the PEM of the CA that signed it", cert, who)
	}
	switch {
	case errors.As(err, &unknown):
		return unknownAdvice(" (" + certName(unknown.Cert) + ")")
	case strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return unknownAdvice("")
	case errors.As(err, &hostname):
		names := append([]string{}, hostname.Certificate.DNSNames...)
		for _, ip := range hostname.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Sprintf("its certificate is for %s, not %q: connect by one of those names, or pass --query-tls-server-name with one",
			strings.Join(names, ", "), hostname.Host)
	case strings.Contains(msg, "x509: certificate is valid for"):
		return "its certificate is not for the name connected to: connect by a name it has, or pass --query-tls-server-name with one"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Sprintf("its certificate (%s, valid %s to %s) is expired or not yet valid: its operator must renew it (or this machine's clock is wrong)",
			certName(invalid.Cert), invalid.Cert.NotBefore.UTC().Format(time.DateOnly), invalid.Cert.NotAfter.UTC().Format(time.DateOnly))
	case strings.Contains(msg, "x509: certificate has expired or is not yet valid"):
		return "its certificate is expired or not yet valid: its operator must renew it (or this machine's clock is wrong)"
	case errors.As(err, &invalid):
		return fmt.Sprintf("its certificate (%s) cannot serve here: %s", certName(invalid.Cert), invalid.Detail)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"),
		strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("it does not speak TLS: use %s rather than %s", plain, secure)
	case (strings.Contains(msg, "remote error: tls: certificate required") ||
		strings.Contains(msg, "remote error: tls: handshake failure")) && o.CertFile == "":
		return "it requires a client certificate: pass --query-tls-cert-file and --query-tls-key-file"
	case strings.Contains(msg, "remote error: tls: certificate required"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: unknown certificate authority"):
		// A client offers its certificate only when the server lists
		// its issuer: "required" then means the issuer is not one.
		return fmt.Sprintf("it refused the client certificate %s: use one signed by an authority of its endpoints.query_tls.client_ca_file", o.CertFile)
	case strings.Contains(msg, "remote error: tls: expired certificate"):
		return fmt.Sprintf("it refused the client certificate %s as expired: renew it", o.CertFile)
	case strings.Contains(msg, "remote error: tls:"), strings.Contains(msg, "tls: "):
		return "the TLS handshake failed"
	}
	return ""
}

func certName(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	return fmt.Sprintf("subject %q, issuer %q", c.Subject.String(), c.Issuer.String())
}

// unauthorizedAdvice says what to do about a 401.
func (c *endpointClient) unauthorizedAdvice() string { return unauthorizedAdvice(c.token, c.tokenFrom) }

// unauthorizedAdvice says what to do about a refused token (HTTP 401,
// Flight SQL's UNAUTHENTICATED), sent from where ("" for none).
func unauthorizedAdvice(token, from string) string {
	if token == "" {
		return fmt.Sprintf("set %s to the endpoint's token, or pass --query-token-file with a file holding it (or name the file in %s)",
			EnvQueryToken, EnvQueryTokenFile)
	}
	return fmt.Sprintf("the token from %s is not one it accepts: use a token of its endpoints.query_token_file (or its %s)", from, EnvQueryToken)
}
