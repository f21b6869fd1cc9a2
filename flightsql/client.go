package flightsql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"

	"github.com/apache/arrow-go/v18/arrow/array"
	arrowsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/stakhanov/stakhanov/analytics"
)

// URI schemes, as ADBC spells them: plaintext and TLS.
const (
	SchemePlain = "grpc"
	SchemeTLS   = "grpc+tls"
)

// ClientOptions configure Query.
type ClientOptions struct {
	// Token is sent as "authorization: Bearer <Token>"; "" sends none.
	Token string
	// TLS configures a grpc+tls:// connection; nil trusts the system's
	// authorities. A client certificate goes in its Certificates.
	TLS *tls.Config
}

// ErrUnauthenticated: the server wants a token this client did not send,
// or a different one.
var ErrUnauthenticated = errors.New("flightsql: not authenticated")

// RemoteError is a server's refusal, with the sentinel its status stands
// for: analytics.ErrNotReadOnly (PermissionDenied), analytics.ErrBadSQL
// (InvalidArgument), analytics.ErrBusy (ResourceExhausted),
// context.DeadlineExceeded, analytics.ErrCorrupt (DataLoss),
// ErrUnauthenticated.
type RemoteError struct {
	URI     string
	Code    codes.Code
	Message string
	err     error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("flight SQL server %s: %s (%s)", e.URI, e.Message, e.Code)
}

func (e *RemoteError) Unwrap() error { return e.err }

func remoteError(uri string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("flight SQL server %s: %w", uri, err)
	}
	e := &RemoteError{URI: uri, Code: st.Code(), Message: st.Message()}
	switch st.Code() {
	case codes.PermissionDenied:
		e.err = analytics.ErrNotReadOnly
	case codes.InvalidArgument:
		e.err = analytics.ErrBadSQL
	case codes.ResourceExhausted:
		e.err = analytics.ErrBusy
	case codes.DeadlineExceeded:
		e.err = context.DeadlineExceeded
	case codes.DataLoss:
		e.err = analytics.ErrCorrupt
	case codes.Unauthenticated:
		e.err = ErrUnauthenticated
	}
	return e
}

// Dial connects to the server at uri, grpc://host:port or
// grpc+tls://host:port. The context it returns carries the token: use it
// for the client's calls.
func Dial(ctx context.Context, uri string, o ClientOptions) (*arrowsql.Client, context.Context, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || (u.Scheme != SchemePlain && u.Scheme != SchemeTLS) {
		return nil, nil, fmt.Errorf("flight SQL address %q: want %s://host:port or %s://host:port", uri, SchemePlain, SchemeTLS)
	}
	creds := insecure.NewCredentials()
	if u.Scheme == SchemeTLS {
		cfg := o.TLS
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(cfg)
	}
	cl, err := arrowsql.NewClientCtx(ctx, u.Host, nil, nil, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, fmt.Errorf("flight SQL server %s: %w", uri, err)
	}
	if o.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.Token)
	}
	return cl, ctx, nil
}

// Query runs sql on the server at uri and hands its result to fn as a
// record reader, valid until fn returns; batches arrive as fn reads them.
// Errors from the server are *RemoteError.
func Query(ctx context.Context, uri, sql string, o ClientOptions, fn func(array.RecordReader) error) error {
	cl, ctx, err := Dial(ctx, uri, o)
	if err != nil {
		return err
	}
	defer cl.Close()
	info, err := cl.Execute(ctx, sql)
	if err != nil {
		return remoteError(uri, err)
	}
	if len(info.Endpoint) != 1 {
		return fmt.Errorf("flight SQL server %s: the result is in %d places; this client reads one", uri, len(info.Endpoint))
	}
	r, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		return remoteError(uri, err)
	}
	defer r.Release()
	if err := fn(r); err != nil {
		if r.Err() != nil {
			return remoteError(uri, r.Err())
		}
		return err
	}
	if r.Err() != nil {
		return remoteError(uri, r.Err())
	}
	return nil
}
