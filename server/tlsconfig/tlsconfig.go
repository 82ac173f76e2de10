// Package tlsconfig serves a certificate from PEM files and picks up a new
// one when the files change, without a restart: what certbot, cert-manager
// and friends expect of a server.
package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckInterval is how often, at most, the files are looked at.
const DefaultCheckInterval = time.Second

// Config says where the certificate is.
type Config struct {
	// CertFile and KeyFile are the PEM certificate chain and its private key.
	CertFile, KeyFile string
	// CheckInterval is the least time between two looks at the files, made
	// by a handshake that finds the last look older. Default DefaultCheckInterval.
	CheckInterval time.Duration
	// Logger hears of reloads and of files that fail to load. Default: discard.
	Logger *slog.Logger
}

// Reloader holds the certificate of a Config's files and reloads it when
// either file changes (its modification time, size or identity, as a
// rename-into-place gives). A pair that fails to load, as while the two
// files are half replaced, leaves the last good certificate in place and
// is tried again at the next check. It is safe for concurrent use.
type Reloader struct {
	cfg Config

	mu      sync.Mutex // protects the fields below
	cert    *tls.Certificate
	stamp   [2]os.FileInfo // of CertFile and KeyFile when cert was loaded
	checked time.Time
}

// New loads the certificate, or says why it cannot.
func New(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("tls: both a certificate and a key file are required")
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) stat() ([2]os.FileInfo, error) {
	var s [2]os.FileInfo
	for i, f := range []string{r.cfg.CertFile, r.cfg.KeyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, fmt.Errorf("tls: %w", err)
		}
		s[i] = fi
	}
	return s, nil
}

// load reads the pair; r.mu is held, or r not yet shared.
func (r *Reloader) load(stamp [2]os.FileInfo) error {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

func changed(a, b os.FileInfo) bool {
	return !os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size()
}

// GetCertificate returns the current certificate, first reloading it if
// the files changed since it was loaded and the last look is older than
// CheckInterval. It is a tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.cfg.CheckInterval {
		r.checked = now
		stamp, err := r.stat()
		if err == nil && (changed(stamp[0], r.stamp[0]) || changed(stamp[1], r.stamp[1])) {
			err = r.load(stamp)
			if err == nil {
				r.cfg.Logger.Info("tls certificate reloaded", "cert", r.cfg.CertFile)
			}
		}
		if err != nil {
			r.cfg.Logger.Warn("tls certificate not reloaded; serving the last good one", "err", err)
		}
	}
	return r.cert, nil
}

// ServerConfig is a TLS server configuration serving r's certificate,
// TLS 1.2 at least, offering the application protocols protos (ALPN).
func (r *Reloader) ServerConfig(protos ...string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: protos}
}

// SelfClientConfig is a client configuration for a server's connections to
// itself (the REST gateway to its own gRPC port): it trusts exactly the
// certificate r serves now, whatever names or CA it has.
func (r *Reloader) SelfClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The usual chain and name checks are replaced, not skipped:
		// VerifyConnection accepts only our own certificate.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			cert, _ := r.GetCertificate(nil)
			if len(cs.PeerCertificates) == 0 || len(cert.Certificate) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, cert.Certificate[0]) {
				return errors.New("tls: peer is not this server")
			}
			return nil
		},
	}
}
