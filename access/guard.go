package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// GuardOptions configure Guard.
type GuardOptions struct {
	// Tokens are the bearer tokens a request must carry one of. Default
	// nil: none is asked for (the endpoint is on loopback, or TLS asks
	// for client certificates).
	Tokens *Tokens
	// Open picks the requests passed on unchecked: health checks, which
	// serve no data. Default nil: none.
	Open func(*http.Request) bool
	// Realm names the endpoint in WWW-Authenticate. Default "stakhanov".
	Realm string
	// TokenHint ends the message of a 401: what a client should set.
	TokenHint string
	// Logger receives a line per refused request (never the token).
	// Default slog.Default().
	Logger *slog.Logger
}

// ErrorBody is the JSON body of a refusal, the same shape as the
// endpoint's own errors.
type ErrorBody struct {
	Error string `json:"error"`
}

// Guard checks each request before next sees it, in this order:
//
//  1. a browser's request from a page of another origin is refused with
//     403: Sec-Fetch-Site cross-site or same-site (another host of the
//     same site), or an Origin header other than the endpoint's own
//     scheme, host and port ("null" included). Programs (curl, Python,
//     stakhanov query) send neither header. Without this, any web page an
//     analyst opens could make the browser run queries, and a token
//     would not help against a browser that holds a client certificate;
//  2. with Tokens, a request without "Authorization: Bearer <token>" of
//     an accepted token gets 401 with WWW-Authenticate; the header is
//     removed before next runs, so nothing after logs it.
//
// Requests Open picks skip both.
func Guard(next http.Handler, o GuardOptions) http.Handler {
	if o.Realm == "" {
		o.Realm = "stakhanov"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Open != nil && o.Open(r) {
			next.ServeHTTP(w, r)
			return
		}
		if why := foreignOrigin(r); why != "" {
			o.Logger.Warn("query endpoint: refused a request from a web page of another origin", "remote", r.RemoteAddr, "why", why, "path", r.URL.Path)
			refuse(w, http.StatusForbidden, "requests from web pages of another origin are refused ("+why+")")
			return
		}
		if o.Tokens != nil {
			tok, scheme := bearer(r)
			err := o.Tokens.Check(tok)
			switch {
			case err == nil:
			case errors.Is(err, ErrTokenFile):
				// the server's fault, not the client's: 503, and the
				// operator has the log line with the path
				o.Logger.Warn("query endpoint: refused a request: the token file cannot be read", "remote", r.RemoteAddr)
				refuse(w, http.StatusServiceUnavailable, "the endpoint cannot read its token file; its operator must fix it")
				return
			default:
				msg, wa := err.Error(), fmt.Sprintf("Bearer realm=%q", o.Realm)
				switch {
				case scheme != "" && !strings.EqualFold(scheme, "Bearer"):
					msg = fmt.Sprintf("the Authorization header is %s, not a Bearer token", scheme)
					wa += `, error="invalid_request"`
				case errors.Is(err, ErrWrongToken):
					wa += `, error="invalid_token"`
				}
				if o.TokenHint != "" {
					msg += ": " + o.TokenHint
				}
				o.Logger.Warn("query endpoint: refused a request without an accepted token", "remote", r.RemoteAddr, "why", err, "path", r.URL.Path)
				w.Header().Set("WWW-Authenticate", wa)
				refuse(w, http.StatusUnauthorized, msg)
				return
			}
		}
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// bearer returns the request's bearer token and the scheme of its
// Authorization header ("" for none).
func bearer(r *http.Request) (token, scheme string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ""
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", scheme
	}
	return strings.TrimSpace(rest), scheme
}

// foreignOrigin says why r comes from a page of another origin, or "".
func foreignOrigin(r *http.Request) string {
	switch site := strings.ToLower(r.Header.Get("Sec-Fetch-Site")); site {
	case "cross-site", "same-site":
		return "Sec-Fetch-Site: " + site
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Scheme, scheme) || u.Host == "" || u.User != nil ||
		!strings.EqualFold(withPort(u.Host, scheme), withPort(r.Host, scheme)) {
		return fmt.Sprintf("Origin %.100q is not %s://%s", origin, scheme, r.Host)
	}
	return ""
}

// withPort adds the scheme's default port to a host without one, as a
// browser leaves it out of Origin and Host alike.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg})
}
