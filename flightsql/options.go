package flightsql

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/analytics"
)

// Options configure a Server. Start from DefaultOptions.
type Options struct {
	// QueryTimeout bounds one query, from its call to the end of its
	// result; it is interrupted after (DeadlineExceeded). Default 60 s,
	// as the HTTP endpoint.
	QueryTimeout time.Duration
	// MaxConcurrent bounds the calls that use DuckDB at once (queries,
	// their schemas, metadata); one more gets ResourceExhausted at once
	// rather than queueing behind them. Default 4: DuckDB's threads are
	// shared with the pipeline's commits. The HTTP endpoint has a bound of
	// its own.
	MaxConcurrent int
	// MaxSQLBytes bounds the SQL text of a statement. Default 1 MiB.
	MaxSQLBytes int
	// Tokens are the bearer tokens every call must carry one of, the
	// handshake included: the same access.Tokens as the HTTP endpoint's,
	// so that one token file (re-read when it changes) or one token
	// serves both. nil: none asked, which Serve allows on loopback only,
	// or beyond it with client certificates (TLS below).
	Tokens *access.Tokens
	// TokenHint ends the message of a refused token: where a client of
	// this deployment sets it. Default "".
	TokenHint string
	// TLS, when set, serves TLS with this configuration (its certificates
	// and, for client certificates, ClientAuth and ClientCAs):
	// access.ServerTLS.Config(), the HTTP endpoint's, in the pipeline.
	// nil: plaintext.
	TLS *tls.Config
	// DuckDBPath names the served file in the server's SqlInfo (and logs).
	DuckDBPath string
	// Version is the server version clients are told. Default "dev".
	Version string
	// Logger receives a debug line per query. Default slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns the documented defaults: no token, no TLS.
func DefaultOptions() Options {
	return Options{
		QueryTimeout:  analytics.DefaultQueryTimeout,
		MaxConcurrent: analytics.DefaultMaxConcurrent,
		MaxSQLBytes:   analytics.DefaultMaxSQLBytes,
		Version:       "dev",
	}
}

// ErrInvalidOptions is wrapped by every Validate failure.
var ErrInvalidOptions = errors.New("flightsql: invalid options")

// ErrNoCredentials: the server would listen beyond loopback asking for
// neither a token nor a client certificate.
var ErrNoCredentials = errors.New("flightsql: listening beyond loopback without credentials")

// Validate reports the first option outside its domain.
func (o Options) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(f, a...))
	}
	switch {
	case o.QueryTimeout <= 0:
		return fail("query timeout %v not positive", o.QueryTimeout)
	case o.MaxConcurrent < 1:
		return fail("max concurrent queries %d below 1", o.MaxConcurrent)
	case o.MaxSQLBytes < 1:
		return fail("max SQL bytes %d below 1", o.MaxSQLBytes)
	case o.TLS != nil && len(o.TLS.Certificates) == 0 && o.TLS.GetCertificate == nil && o.TLS.GetConfigForClient == nil:
		return fail("TLS configuration without a certificate")
	}
	return nil
}

// CheckExposure refuses a listener beyond loopback when o asks for no
// credentials (no token, no client certificate): SQL that reads would be
// open to anyone who reaches the address.
func (o Options) CheckExposure(addr net.Addr) error {
	if o.Tokens != nil || o.clientCertificates() {
		return nil
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s would serve SQL to anyone who reaches it: give the server a token or require client certificates, or bind a loopback address",
		ErrNoCredentials, addr)
}

// clientCertificates: TLS admits only clients with a verified certificate.
func (o Options) clientCertificates() bool {
	return o.TLS != nil && o.TLS.ClientAuth == tls.RequireAndVerifyClientCert
}
