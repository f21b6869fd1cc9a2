package flightsql

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

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
	// Token returns the bearer token every call must carry; it is called
	// for each call, so a token read from a file may change while the
	// server runs. nil: no authentication, which Serve allows on loopback
	// only. A Token returning "" or an error refuses every call.
	Token func() (string, error)
	// TLS, when set, serves TLS with this configuration (its certificates
	// and, for client certificates, ClientAuth and ClientCAs). nil:
	// plaintext.
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

// ErrNoToken: the server would listen beyond loopback with no token.
var ErrNoToken = errors.New("flightsql: listening beyond loopback without a token")

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

// CheckExposure refuses a listener beyond loopback when o has no token:
// SQL that reads would be open to anyone who reaches the address.
func (o Options) CheckExposure(addr net.Addr) error {
	if o.Token != nil {
		return nil
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s would serve SQL to anyone who reaches it: give the server a token, or bind a loopback address", ErrNoToken, addr)
}
