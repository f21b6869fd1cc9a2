package flightsql

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The bearer check runs on every call, the handshake included: the JDBC
// driver sends its token= on a Handshake first and on every call after,
// ADBC on every call. Basic credentials are refused, naming the way that
// works, rather than traded for a token: there are no users here, only
// the one token.

type authenticator struct {
	token func() (string, error)
}

func (a authenticator) check(ctx context.Context) error {
	if a.token == nil {
		return nil
	}
	want, err := a.token()
	if err != nil || want == "" {
		// The server's configuration, not the client, is at fault; the
		// reason is the operator's to read in the logs, not the client's.
		return status.Error(codes.Unavailable, "the server cannot read its token; ask its operator (calls are refused until it can)")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return status.Error(codes.Unauthenticated, "no credentials: send the header \"authorization: Bearer <token>\" "+
			"(JDBC: token=<token> in the URL; ADBC: adbc.flight.sql.authorization_header)")
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return status.Errorf(codes.Unauthenticated, "%s credentials are not accepted: send \"authorization: Bearer <token>\" "+
			"(JDBC: token=<token> in the URL, not user and password)", scheme)
	}
	// Hashing first makes the comparison constant-time in the length too.
	got, exp := sha256.Sum256([]byte(strings.TrimSpace(cred))), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(got[:], exp[:]) != 1 {
		return status.Error(codes.Unauthenticated, "wrong token")
	}
	return nil
}

func (a authenticator) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a authenticator) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}
