package flightsql

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/stakhanov/stakhanov/access"
)

// The bearer check runs on every call, the handshake included: the JDBC
// driver sends its token= on a Handshake first and on every call after,
// ADBC on every call. Basic credentials are refused, naming the way that
// works, rather than traded for a token: there are no users here, only
// the tokens of the token file.

type authenticator struct {
	tokens *access.Tokens
	hint   string
	log    *slog.Logger
}

// howToSend ends a refusal: how each kind of client sends a token.
const howToSend = "send the header \"authorization: Bearer <token>\" " +
	"(JDBC: token=<token> in the URL; ADBC: adbc.flight.sql.authorization_header)"

func (a authenticator) check(ctx context.Context) error {
	if a.tokens == nil {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	presented, scheme := "", ""
	if vals := md.Get("authorization"); len(vals) > 0 {
		var cred string
		scheme, cred, _ = strings.Cut(strings.TrimSpace(vals[0]), " ")
		presented = strings.TrimSpace(cred)
	}
	if scheme != "" && !strings.EqualFold(scheme, "Bearer") {
		a.refused(ctx, scheme+" credentials")
		return status.Errorf(codes.Unauthenticated, "%s credentials are not accepted: send \"authorization: Bearer <token>\" "+
			"(JDBC: token=<token> in the URL, not user and password)%s", scheme, a.suffix())
	}
	err := a.tokens.Check(presented)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, access.ErrTokenFile):
		// The server's configuration, not the client, is at fault; the
		// reason (the path) is the operator's to read in the logs, which
		// access.Tokens wrote once.
		a.log.Warn("flight SQL: refused a call: the token file cannot be read", "peer", peerOf(ctx))
		return status.Error(codes.Unavailable, "the server cannot read its token file; ask its operator (calls are refused until it can)")
	case errors.Is(err, access.ErrNoToken):
		a.refused(ctx, "no token")
		return status.Errorf(codes.Unauthenticated, "no credentials: %s%s", howToSend, a.suffix())
	default:
		a.refused(ctx, "wrong token")
		return status.Errorf(codes.Unauthenticated, "wrong token: it is not one the server accepts%s", a.suffix())
	}
}

func (a authenticator) suffix() string {
	if a.hint == "" {
		return ""
	}
	return "; " + a.hint
}

// refused logs a refusal, never the token.
func (a authenticator) refused(ctx context.Context, why string) {
	a.log.Warn("flight SQL: refused a call without an accepted token", "peer", peerOf(ctx), "why", why)
}

func peerOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
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
