package access

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSOptions configure an endpoint's TLS. The zero value is plain HTTP.
type TLSOptions struct {
	// CertFile is the PEM certificate chain the endpoint presents, the
	// server's own first; KeyFile its private key (a kubernetes.io/tls
	// Secret's tls.crt and tls.key). Both or neither; default none. They
	// are read at start and again whenever either changes, so a renewed
	// certificate is served without a restart.
	CertFile, KeyFile string
	// ClientCAFile is a PEM file of the authorities whose client
	// certificates the endpoint requires (mutual TLS): a client without
	// one signed by them fails the handshake. Read at start. Default none.
	ClientCAFile string
	// Recheck is how often, at most, the certificate files are looked at
	// for a change. Default (0) 1 s.
	Recheck time.Duration
}

// Enabled: the endpoint serves TLS.
func (o TLSOptions) Enabled() bool { return o.CertFile != "" || o.KeyFile != "" }

// ClientCertificates: the endpoint requires client certificates.
func (o TLSOptions) ClientCertificates() bool { return o.ClientCAFile != "" }

// Validate reports the first unusable setting without reading the files.
func (o TLSOptions) Validate() error {
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		return errors.New("TLS certificate and key: give both or neither")
	case o.ClientCAFile != "" && o.CertFile == "":
		return errors.New("client certificates (a client CA file) need TLS: give the server's certificate and key too")
	case o.Recheck < 0:
		return fmt.Errorf("TLS recheck %v negative", o.Recheck)
	}
	return nil
}

// ServerTLS is an endpoint's TLS configuration, its certificate re-read
// when the files change. Safe for concurrent use.
type ServerTLS struct {
	o   TLSOptions
	log *slog.Logger
	cas *x509.CertPool

	mu   sync.Mutex
	next time.Time
	seen [2]os.FileInfo
	cert *tls.Certificate
}

// NewServerTLS reads the files o names now, so that a missing, unreadable,
// mismatched or expired one fails at start. log receives a line when the
// certificate is re-read or a new one cannot be (the previous is served
// meanwhile); nil discards them.
func NewServerTLS(o TLSOptions, log *slog.Logger) (*ServerTLS, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if !o.Enabled() {
		return nil, errors.New("access: no TLS certificate")
	}
	if o.Recheck == 0 {
		o.Recheck = DefaultRecheck
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &ServerTLS{o: o, log: log}
	if o.ClientCAFile != "" {
		pool, err := readPool(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		s.cas = pool
	}
	if err := s.load(time.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// readPool reads a PEM file of certificates into a pool.
func readPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// LoadKeyPair reads a PEM certificate chain and its key and checks that
// the certificate is valid now; errors name the files and the problem.
func LoadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("TLS certificate %s expired at %s: renew it", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("TLS certificate %s is not valid before %s: check the clock, or issue it again", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

func (s *ServerTLS) load(now time.Time) error {
	s.next = now.Add(s.o.Recheck)
	var seen [2]os.FileInfo
	for i, f := range []string{s.o.CertFile, s.o.KeyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		seen[i] = fi
	}
	cert, err := LoadKeyPair(s.o.CertFile, s.o.KeyFile, now)
	if err != nil {
		return err
	}
	s.seen, s.cert = seen, cert
	return nil
}

// changed: either file differs from when it was last read.
func (s *ServerTLS) changed() bool {
	for i, f := range []string{s.o.CertFile, s.o.KeyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return true
		}
		if p := s.seen[i]; p == nil || !os.SameFile(fi, p) || fi.Size() != p.Size() || !fi.ModTime().Equal(p.ModTime()) {
			return true
		}
	}
	return false
}

// Certificate returns the certificate to present, re-reading the files
// if they changed. A new certificate that cannot be loaded (a rotation
// half done: the certificate written, not yet its key) is logged and the
// previous one served until it can.
func (s *ServerTLS) Certificate() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Before(s.next) {
		return s.cert
	}
	s.next = now.Add(s.o.Recheck)
	if !s.changed() {
		return s.cert
	}
	prev := s.cert
	if err := s.load(now); err != nil {
		s.log.Warn("query TLS: the certificate files changed but cannot be loaded: still serving the previous certificate", "err", err)
		return prev
	}
	s.log.Info("query TLS: certificate re-read", "cert", s.o.CertFile, "subject", s.cert.Leaf.Subject.String(),
		"not_after", s.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return s.cert
}

// Leaf is the certificate served now.
func (s *ServerTLS) Leaf() *x509.Certificate { return s.Certificate().Leaf }

// Config is the server's tls.Config: TLS 1.2 at least, the certificate
// from Certificate, and client certificates required when a client CA is
// configured.
func (s *ServerTLS) Config() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.Certificate(), nil
		},
	}
	if s.cas != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = s.cas
	}
	return c
}

// ClientTLSOptions configure how a client speaks TLS to an endpoint.
type ClientTLSOptions struct {
	// CAFile is a PEM file of the authorities to trust. Default: the
	// system's.
	CAFile string
	// CertFile and KeyFile are the client's certificate and key, for an
	// endpoint that requires one. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the endpoint's certificate must carry.
	// Default: the host of the URL (set it when connecting through a
	// tunnel or a port-forward to 127.0.0.1).
	ServerName string
}

// Config builds the client's tls.Config, reading the files now.
func (o ClientTLSOptions) Config() (*tls.Config, error) {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("TLS client certificate and key: give both or neither")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pool, err := readPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		c.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := LoadKeyPair(o.CertFile, o.KeyFile, time.Now())
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{*cert}
	}
	return c, nil
}
