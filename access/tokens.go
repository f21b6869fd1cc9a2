package access

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// MinTokenLength is the fewest characters a token may have: enough that
// guessing one over the network is hopeless (`openssl rand -hex 32` and
// `stakhanov token` make 64).
const MinTokenLength = 16

// Errors of Tokens.Check and of reading tokens.
var (
	// ErrNoToken: the request carries no bearer token.
	ErrNoToken = errors.New("no bearer token")
	// ErrWrongToken: the request's token is not one the endpoint accepts.
	ErrWrongToken = errors.New("the bearer token is not one the endpoint accepts")
	// ErrTokenFile: the endpoint cannot read its token file (any more);
	// it refuses every request until it can.
	ErrTokenFile = errors.New("the endpoint's token file cannot be read")
	// ErrMalformedToken: a configured token cannot be one (too short,
	// spaces, not ASCII). Its text is never quoted.
	ErrMalformedToken = errors.New("malformed token")
)

// ValidToken reports why s cannot be a token: fewer than MinTokenLength
// characters, or a character that is not printable ASCII (a token travels
// in an HTTP header). The error never quotes s.
func ValidToken(s string) error {
	if len(s) < MinTokenLength {
		return fmt.Errorf("%w: %d characters, fewer than %d (make one with `openssl rand -hex 32`)", ErrMalformedToken, len(s), MinTokenLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: character %d is a space, a control character or not ASCII", ErrMalformedToken, i+1)
		}
	}
	return nil
}

// ParseTokens returns the tokens of a token file: each line, without the
// spaces around it, that is not empty and does not start with '#'. A
// client sends the first; a server accepts any, which lets a token be
// rotated: add the new one, move the clients to it, remove the old one.
func ParseTokens(data []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := ValidToken(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the file holds no token (one per line; make one with `openssl rand -hex 32`)", ErrMalformedToken)
	}
	return out, nil
}

// ReadTokenFile reads the tokens of the file at path (ParseTokens).
func ReadTokenFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	toks, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return toks, nil
}

// TokenOptions say which bearer tokens an endpoint accepts. Set Token or
// File, not both.
type TokenOptions struct {
	// Token is accepted as given (from the environment or a configuration
	// file). Default "": none.
	Token string
	// File holds the tokens accepted, as ParseTokens reads them. It is
	// read when Tokens is made, then again whenever it changes (a new
	// file, another size or modification time; a Kubernetes Secret volume
	// swaps its files that way). While it cannot be read, every request is
	// refused. Default "": none.
	File string
	// Recheck is how often, at most, File is looked at for a change.
	// Default (0) 1 s.
	Recheck time.Duration
}

// DefaultRecheck is how often a token file is looked at unless told
// otherwise.
const DefaultRecheck = time.Second

// Enabled: the options name a token or a token file.
func (o TokenOptions) Enabled() bool { return o.Token != "" || o.File != "" }

// Validate reports the first unusable setting without reading File.
func (o TokenOptions) Validate() error {
	switch {
	case o.Token != "" && o.File != "":
		return errors.New("a token and a token file are both set: give one")
	case o.Recheck < 0:
		return fmt.Errorf("token file recheck %v negative", o.Recheck)
	case o.Token != "":
		return ValidToken(o.Token)
	}
	return nil
}

// Tokens are the tokens an endpoint accepts, as SHA-256 digests. Safe for
// concurrent use.
type Tokens struct {
	o   TokenOptions
	log *slog.Logger

	mu   sync.Mutex
	next time.Time   // File is not looked at again before
	seen os.FileInfo // File as last read
	sums [][sha256.Size]byte
	err  error // File could not be read: requests are refused
}

// NewTokens reads the tokens o names (File now, so that a missing or
// empty file fails at start). log receives a line when File is re-read or
// cannot be; nil discards them.
func NewTokens(o TokenOptions, log *slog.Logger) (*Tokens, error) {
	if !o.Enabled() {
		return nil, errors.New("access: no token and no token file")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Recheck == 0 {
		o.Recheck = DefaultRecheck
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tokens{o: o, log: log}
	if o.File == "" {
		t.sums = [][sha256.Size]byte{sha256.Sum256([]byte(o.Token))}
		return t, nil
	}
	if err := t.load(time.Now()); err != nil {
		return nil, err
	}
	return t, nil
}

// load reads File; t.mu is held (or t not yet shared).
func (t *Tokens) load(now time.Time) error {
	t.next = now.Add(t.o.Recheck)
	fi, err := os.Stat(t.o.File)
	var toks []string
	if err == nil {
		toks, err = ReadTokenFile(t.o.File)
	}
	if err != nil {
		t.seen, t.sums, t.err = nil, nil, err
		return err
	}
	sums := make([][sha256.Size]byte, len(toks))
	for i, tok := range toks {
		sums[i] = sha256.Sum256([]byte(tok))
	}
	t.seen, t.sums, t.err = fi, sums, nil
	return nil
}

// current returns the digests in force, re-reading File if it changed.
func (t *Tokens) current() ([][sha256.Size]byte, error) {
	if t.o.File == "" {
		return t.sums, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Before(t.next) {
		return t.sums, t.err
	}
	t.next = now.Add(t.o.Recheck)
	fi, err := os.Stat(t.o.File)
	if err == nil && t.err == nil && t.seen != nil && os.SameFile(fi, t.seen) &&
		fi.Size() == t.seen.Size() && fi.ModTime().Equal(t.seen.ModTime()) {
		return t.sums, nil
	}
	had := t.err == nil
	if err := t.load(now); err != nil {
		if had { // once per failure, not once per request
			t.log.Error("the query token file cannot be read: every request and Flight SQL call is refused until it can", "path", t.o.File, "err", err)
		}
		return nil, err
	}
	if had {
		t.log.Info("query token file changed, tokens re-read", "path", t.o.File, "tokens", len(t.sums))
	} else {
		t.log.Info("query token file readable again", "path", t.o.File, "tokens", len(t.sums))
	}
	return t.sums, nil
}

// Check says whether presented is an accepted token: nil, ErrNoToken,
// ErrWrongToken, or an error wrapping ErrTokenFile. The comparison takes
// the same time whichever token matches and however much of one does: it
// compares digests of equal length, all of them, in constant time.
func (t *Tokens) Check(presented string) error {
	if presented == "" {
		return ErrNoToken
	}
	sums, err := t.current()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTokenFile, err)
	}
	p := sha256.Sum256([]byte(presented))
	match := 0
	for i := range sums {
		match |= subtle.ConstantTimeCompare(p[:], sums[i][:])
	}
	if match != 1 {
		return ErrWrongToken
	}
	return nil
}

// NewToken returns a new random token: 32 bytes from crypto/rand, in hex.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand: it crashes the program rather than return an error)
	return hex.EncodeToString(b)
}

// EnsureTokenFile writes a new token (NewToken) to path, created with
// mode 0600, unless path holds a token already, which is kept (created is
// false): a container that starts again keeps the token its clients
// have. A file there that holds no usable token is an error, not
// overwritten.
func EnsureTokenFile(path string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		if _, err := ReadTokenFile(path); err != nil {
			return false, fmt.Errorf("%w; remove it to have a new token written", err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("token file: %w", err)
	}
	_, werr := f.WriteString(NewToken() + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("token file %s: %w", path, err)
	}
	return true, nil
}
