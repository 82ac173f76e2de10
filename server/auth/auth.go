// Package auth verifies and mints the JWTs that identify Tertulia's users.
//
// Tokens are HS256, with the algorithm pinned (a token signed any other way,
// "none" included, is refused), exp required, and iss/aud checked when
// configured. sub is the user id, username the display name, and roles may
// hold "admin".
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tertulia/tertulia/server/hub"
)

// RoleAdmin is the role that may broadcast.
const RoleAdmin = "admin"

// MinSecretBytes is the shortest HMAC secret accepted.
const MinSecretBytes = 16

// Config sets how tokens are checked and minted.
type Config struct {
	// Secret is the HS256 key. Required, at least MinSecretBytes long.
	Secret []byte
	// Issuer and Audience are checked when set, and written into minted tokens.
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway time.Duration
	// TTL is the lifetime of minted tokens. Default 24h.
	TTL time.Duration
}

// Authenticator verifies and mints tokens. It is safe for concurrent use.
type Authenticator struct {
	cfg    Config
	parser *jwt.Parser
}

// ErrInvalidToken is wrapped by every verification failure.
var ErrInvalidToken = errors.New("invalid token")

// Claims are Tertulia's JWT claims.
type Claims struct {
	Username string   `json:"username,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// Locale is the user's language (BCP 47, e.g. "es"): the server's
	// texts to the user's sessions are in it where the server has it.
	Locale string `json:"locale,omitempty"`
	jwt.RegisteredClaims
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("jwt secret must be at least %d bytes", MinSecretBytes)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Authenticator{cfg: cfg, parser: jwt.NewParser(opts...)}, nil
}

// RandomSecret returns a fresh secret for dev mode.
func RandomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// Verify checks token and returns the identity it carries.
func (a *Authenticator) Verify(token string) (hub.Identity, error) {
	var c Claims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.cfg.Secret, nil })
	if err != nil {
		return hub.Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return hub.Identity{}, fmt.Errorf("%w: sub is required", ErrInvalidToken)
	}
	name := c.Username
	if name == "" {
		name = c.Subject
	}
	return hub.Identity{UserID: c.Subject, Name: name, Admin: slices.Contains(c.Roles, RoleAdmin), Locale: c.Locale,
		Expires: c.ExpiresAt.Time}, nil
}

// Issue mints a token for user, with the admin role if admin is set.
func (a *Authenticator) Issue(user string, admin bool) (string, error) {
	if user == "" {
		return "", errors.New("user is required")
	}
	now := time.Now()
	c := Claims{
		Username: user,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			Issuer:    a.cfg.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(a.cfg.TTL)),
		},
	}
	if a.cfg.Audience != "" {
		c.Audience = jwt.ClaimStrings{a.cfg.Audience}
	}
	if admin {
		c.Roles = []string{RoleAdmin}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.cfg.Secret)
}
