package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Security is how every connection the pipeline opens to the brokers is
// made: plain TCP by default, TLS and SASL as the cluster requires.
type Security struct {
	TLS  TLSOptions
	SASL SASLOptions
}

// TLSOptions configure TLS to the brokers.
type TLSOptions struct {
	// Enabled turns TLS on. Default false. The other fields need it.
	Enabled bool
	// CAFile is a PEM file of the certificate authorities to trust.
	// Default "": the system's.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mutual TLS).
	// Default "": none. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry.
	// Default "": the host of each broker's address.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate. Default false;
	// for testing only: it gives up the authentication TLS provides.
	InsecureSkipVerify bool
}

// SASLOptions configure SASL authentication.
type SASLOptions struct {
	// Mechanism is "" (none, the default), "plain", "scram-sha-256" or
	// "scram-sha-512". PLAIN sends the password as is: use it with TLS.
	Mechanism string
	// Username and Password are the credentials.
	Username, Password string
}

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// ErrAuthentication is returned, at once and without retrying, when the
// brokers refuse the credentials or the TLS handshake: retrying with the
// same settings would only repeat the refusal.
var ErrAuthentication = errors.New("authentication with the brokers failed")

// Validate reports the first unusable setting.
func (s Security) Validate() error {
	t, a := s.TLS, s.SASL
	switch {
	case !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify):
		return errors.New("TLS settings given but TLS is not enabled")
	case (t.CertFile == "") != (t.KeyFile == ""):
		return errors.New("TLS client certificate and key: give both or neither")
	}
	switch strings.ToLower(a.Mechanism) {
	case "":
		if a.Username != "" || a.Password != "" {
			return errors.New("SASL credentials given without a SASL mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if a.Username == "" || a.Password == "" {
			return fmt.Errorf("SASL %s needs a username and a password", a.Mechanism)
		}
	default:
		return fmt.Errorf("SASL mechanism %q: choose %s, %s or %s", a.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	return nil
}

// TLSConfig builds the TLS configuration, nil when TLS is off. Files are
// read now, so a missing one fails at start.
func (s Security) TLSConfig() (*tls.Config, error) {
	t := s.TLS
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // an explicit, documented testing option
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Mechanism builds the SASL mechanism, nil when SASL is off.
func (s Security) Mechanism() (sasl.Mechanism, error) {
	a := s.SASL
	switch strings.ToLower(a.Mechanism) {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: a.Username, Password: a.Password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, a.Username, a.Password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, a.Username, a.Password)
	}
	return nil, fmt.Errorf("SASL mechanism %q unknown", a.Mechanism)
}

// Connector makes the kafka-go pieces every part of the pipeline uses, all
// with the same Security: a client for admin and fetch requests, writers,
// and the dialer consumer groups connect with.
type Connector struct {
	Brokers   []string
	Transport *kafka.Transport
	Dialer    *kafka.Dialer
}

// NewConnector prepares connections to brokers under s.
func NewConnector(brokers []string, s Security) (*Connector, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	tc, err := s.TLSConfig()
	if err != nil {
		return nil, err
	}
	mech, err := s.Mechanism()
	if err != nil {
		return nil, err
	}
	return &Connector{
		Brokers:   brokers,
		Transport: &kafka.Transport{TLS: tc, SASL: mech, DialTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute, ClientID: clientID},
		Dialer:    &kafka.Dialer{TLS: tc, SASLMechanism: mech, Timeout: 10 * time.Second, DualStack: true, ClientID: clientID},
	}, nil
}

// clientID names this process to the brokers, so that the owner of a
// partition (`stakhanov status`, broker logs and quotas) is recognisable.
var clientID = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("stakhanov-%s-%d", host, os.Getpid())
}()

// Client is a kafka-go client of the brokers.
func (c *Connector) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: c.Transport}
}

// IsAuthError tells a refusal of the credentials or of TLS from a
// transient failure.
func IsAuthError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrAuthentication) || errors.Is(err, kafka.SASLAuthenticationFailed) ||
		errors.Is(err, kafka.UnsupportedSASLMechanism) || errors.Is(err, kafka.IllegalSASLState) {
		return true
	}
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	// An alert from the broker during or right after the handshake: it
	// refused our certificate, or we sent none. crypto/tls reports alerts
	// received as net.OpError "remote error".
	var alert tls.AlertError
	var op *net.OpError
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) ||
		errors.As(err, &alert) || errors.As(err, &op) && op.Op == "remote error"
}
