// Package auth verifies and mints the JWTs that identify Tertulia's users.
//
// Keys: an HS256 secret (and the previous one, during a rotation), PEM
// public keys (RSA, ECDSA, Ed25519) and a JWKS URL. Each key verifies one
// algorithm only, its own (see algFor): an RS256 key never checks an HS256
// token, "none" is never accepted, and the algorithms accepted are those
// of the configured keys. Tokens are bounded in size (refused before any
// parsing), exp is required, exp/nbf/iat must be JSON numbers, iat may not
// be in the future beyond the leeway, and iss/aud are checked when
// configured. sub is the user id, username the display name, and roles may
// hold "admin". Only HS256 tokens are minted, with the current secret.
package auth

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tertulia/tertulia/server/hub"
)

// RoleAdmin is the role that may broadcast.
const RoleAdmin = "admin"

// MinSecretBytes is the shortest HMAC secret accepted.
const MinSecretBytes = 16

// DefaultMaxTokenBytes is the default bound on a token's size.
const DefaultMaxTokenBytes = 8 << 10

// Config sets how tokens are checked and minted. At least one of Secret,
// PublicKeys and JWKSURL is required.
type Config struct {
	// Secret is the HS256 key, at least MinSecretBytes long; the only one
	// that signs (Issue).
	Secret []byte
	// PreviousSecret is also accepted, never used to sign: set it to the
	// old secret while tokens signed with it are still about.
	PreviousSecret []byte
	// PublicKeys verify tokens signed with their private halves (see
	// ReadPublicKeyFiles): RSA, ECDSA or Ed25519.
	PublicKeys []crypto.PublicKey
	// JWKSURL is the address of a JSON Web Key Set, such as an identity
	// provider's jwks_uri.
	JWKSURL string
	// JWKSRefreshInterval is how often the key set is fetched anew. Default 1h.
	JWKSRefreshInterval time.Duration
	// JWKSRefetchInterval bounds refetches for unknown kids: at most one
	// per interval. Default 30s.
	JWKSRefetchInterval time.Duration
	// JWKSTimeout bounds one fetch of the key set. Default 5s.
	JWKSTimeout time.Duration
	// Issuer and Audience are checked when set, and written into minted tokens.
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway time.Duration
	// TTL is the lifetime of minted tokens. Default 24h.
	TTL time.Duration
	// MaxTokenBytes bounds a token's size; a longer one is refused before
	// it is parsed. Default DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Logger receives JWKS fetch failures. Default: discard.
	Logger *slog.Logger
}

// Authenticator verifies and mints tokens. It is safe for concurrent use.
// Close releases it.
type Authenticator struct {
	cfg    Config
	parser *jwt.Parser
	static []pinnedKey // secrets and PEM keys
	jwks   *jwks       // nil without JWKSURL
	seen   *verified   // nil with JWKSURL
}

// ErrInvalidToken is wrapped by every verification failure.
var ErrInvalidToken = errors.New("invalid token")

// New returns an Authenticator for cfg. With a JWKS URL it fetches the key
// set before it returns (within JWKSTimeout; a failure is logged and the
// fetch retried on the first token) and refreshes it until Close.
func New(cfg Config) (*Authenticator, error) {
	cfg = cfg.withDefaults()
	a := &Authenticator{cfg: cfg}
	for _, s := range [][]byte{cfg.Secret, cfg.PreviousSecret} {
		if len(s) == 0 {
			continue
		}
		if len(s) < MinSecretBytes {
			return nil, fmt.Errorf("jwt secret must be at least %d bytes", MinSecretBytes)
		}
		a.static = append(a.static, pinnedKey{alg: jwt.SigningMethodHS256.Alg(), key: s})
	}
	if len(cfg.PreviousSecret) > 0 && len(cfg.Secret) == 0 {
		return nil, errors.New("jwt previous secret without a secret")
	}
	for _, k := range cfg.PublicKeys {
		alg := algFor(k)
		if alg == "" {
			return nil, fmt.Errorf("jwt public key: unsupported key type %T", k)
		}
		a.static = append(a.static, pinnedKey{alg: alg, key: k})
	}
	if len(a.static) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("no jwt key: a secret, a public key or a jwks url is required")
	}
	var algs []string
	for _, k := range a.static {
		algs = append(algs, k.alg)
	}
	if cfg.JWKSURL != "" {
		j, err := newJWKS(cfg.JWKSURL, cfg, cfg.Logger)
		if err != nil {
			return nil, err
		}
		a.jwks = j
		algs = append(algs, asymmetricAlgs...)
	} else {
		a.seen = newVerified()
	}
	slices.Sort(algs)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(slices.Compact(algs)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

func (c Config) withDefaults() Config {
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	if c.TTL == 0 {
		c.TTL = 24 * time.Hour
	}
	if c.MaxTokenBytes <= 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if c.JWKSRefreshInterval <= 0 {
		c.JWKSRefreshInterval = time.Hour
	}
	if c.JWKSRefetchInterval <= 0 {
		c.JWKSRefetchInterval = 30 * time.Second
	}
	if c.JWKSTimeout <= 0 {
		c.JWKSTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Close stops the JWKS refresh, if any. Verify must not be called after.
func (a *Authenticator) Close() {
	if a.jwks != nil {
		a.jwks.close()
	}
}

// RandomSecret returns a fresh secret for dev mode.
func RandomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// Verify checks token and returns the identity it carries. A token
// accepted before is not checked again while it is valid (see verified);
// the Rooms of the identity returned may be shared, and are read only.
func (a *Authenticator) Verify(token string) (hub.Identity, error) {
	if len(token) > a.cfg.MaxTokenBytes {
		return hub.Identity{}, fmt.Errorf("%w: token is %d bytes, over the limit of %d", ErrInvalidToken, len(token), a.cfg.MaxTokenBytes)
	}
	if a.seen == nil {
		return a.verify(token)
	}
	now := time.Now()
	k := tokenKey(token)
	if who, ok := a.seen.get(k, now); ok {
		return who, nil
	}
	who, err := a.verify(token)
	if err == nil {
		a.seen.put(k, who, who.Expires.Add(a.cfg.Leeway), now)
	}
	return who, err
}

// verify parses and checks token.
func (a *Authenticator) verify(token string) (hub.Identity, error) {
	var c tokenClaims
	_, err := a.parser.ParseWithClaims(token, &c, a.keyFor)
	if err != nil {
		return hub.Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return hub.Identity{}, fmt.Errorf("%w: sub is required", ErrInvalidToken)
	}
	if err := CheckUser(c.Subject); err != nil {
		return hub.Identity{}, fmt.Errorf("%w: sub %w", ErrInvalidToken, err)
	}
	if err := hub.CheckUserText(c.Username); err != nil {
		return hub.Identity{}, fmt.Errorf("%w: username %w", ErrInvalidToken, err)
	}
	name := c.Username
	if name == "" {
		name = c.Subject
	}
	return hub.Identity{UserID: c.Subject, Name: name, Admin: slices.Contains(c.Roles, RoleAdmin), Rooms: c.Rooms.list(), Locale: c.Locale,
		Expires: c.ExpiresAt.date.Time}, nil
}

// keyFor is the jwt.Keyfunc: the keys pinned to the token's algorithm
// (already one of the accepted ones), the JWKS key named by its kid
// included.
func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var set jwt.VerificationKeySet
	for _, k := range a.static {
		if k.alg == alg {
			set.Keys = append(set.Keys, k.key)
		}
	}
	kid, _ := t.Header["kid"].(string)
	if a.jwks != nil && alg != jwt.SigningMethodHS256.Alg() {
		keys, err := a.jwks.keys(kid, alg)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, keys...)
	}
	switch len(set.Keys) {
	case 0:
		if kid != "" {
			return nil, fmt.Errorf("no %s key with kid %q", alg, kid)
		}
		return nil, fmt.Errorf("no %s key", alg)
	case 1:
		return set.Keys[0], nil
	}
	return set, nil
}

// ErrInvalidUser is Issue's refusal of a user id that CheckUser refuses.
var ErrInvalidUser = errors.New("invalid user")

// CheckUser checks a user id as a token's sub carries it: the rules of
// hub.CheckUserText, and not an anonymous guest's (hub.GuestIDPrefix), so
// that no token takes a guest's id and its private messages.
func CheckUser(user string) error {
	if err := hub.CheckUserText(user); err != nil {
		return err
	}
	if strings.HasPrefix(user, hub.GuestIDPrefix) {
		return fmt.Errorf("%q starts %q, which only anonymous guests' ids do", user, hub.GuestIDPrefix)
	}
	return nil
}

// Issue mints an HS256 token for user, with the admin role if admin is set
// and rooms as its rooms claim.
func (a *Authenticator) Issue(user string, admin bool, rooms ...string) (string, error) {
	if user == "" {
		return "", errors.New("user is required")
	}
	if err := CheckUser(user); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidUser, err) // Verify would refuse the token
	}
	if len(a.cfg.Secret) == 0 {
		return "", errors.New("no jwt secret to sign with")
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
	c.Rooms = rooms
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.cfg.Secret)
}
