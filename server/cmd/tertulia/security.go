package main

import (
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/tlsconfig"
)

// securityFlags are serve's flags for token keys and limits and for TLS,
// beside --jwt-secret, --jwt-issuer and --jwt-audience.
type securityFlags struct {
	previousSecret *string
	publicKeys     listFlag
	jwksURL        *string
	leeway         *time.Duration
	maxTokenBytes  *int
	tlsCert        *string
	tlsKey         *string
}

func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	f := &securityFlags{
		previousSecret: fs.String("jwt-previous-secret", "", "HS256 secret also accepted, never used to sign (rotation)"),
		jwksURL:        fs.String("jwt-jwks-url", "", "JWKS URL of an identity provider; refetched on an unknown kid at most every 30s"),
		leeway:         fs.Duration("jwt-leeway", 30*time.Second, "clock skew allowed on exp, nbf and iat"),
		maxTokenBytes:  fs.Int("jwt-max-bytes", auth.DefaultMaxTokenBytes, "longest token accepted, in bytes"),
		tlsCert:        fs.String("tls-cert", "", "PEM certificate chain: serve both ports over TLS (reloaded when the file changes)"),
		tlsKey:         fs.String("tls-key", "", "PEM private key of --tls-cert"),
	}
	fs.Var(&f.publicKeys, "jwt-public-key", "PEM file of RSA, ECDSA or Ed25519 public keys (repeatable, or comma-separated)")
	return f
}

// hasKeys reports whether tokens can be verified without --jwt-secret.
func (f *securityFlags) hasKeys() bool { return len(f.publicKeys) > 0 || *f.jwksURL != "" }

// apply reads the key and certificate files into cfg.
func (f *securityFlags) apply(cfg *node.Config, log *slog.Logger) error {
	if *f.previousSecret != "" {
		cfg.JWT.PreviousSecret = []byte(*f.previousSecret)
	}
	keys, err := auth.ReadPublicKeyFiles(f.publicKeys...)
	if err != nil {
		return err
	}
	cfg.JWT.PublicKeys = keys
	cfg.JWT.JWKSURL = *f.jwksURL
	cfg.JWT.Leeway = *f.leeway
	cfg.JWT.MaxTokenBytes = *f.maxTokenBytes
	cfg.JWT.Logger = log
	if *f.tlsCert != "" || *f.tlsKey != "" {
		r, err := tlsconfig.New(tlsconfig.Config{CertFile: *f.tlsCert, KeyFile: *f.tlsKey, Logger: log})
		if err != nil {
			return err
		}
		cfg.TLS = r
	}
	return nil
}

// listFlag is a repeatable flag whose values may also be comma-separated,
// as they are in its environment variable.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}
