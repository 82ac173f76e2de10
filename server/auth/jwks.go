package auth

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwks holds the keys of a JSON Web Key Set fetched over HTTP: fetched
// once at start (a failure is logged, not fatal: the identity provider may
// come up later), refreshed every RefreshInterval, and refetched when a
// token names an unknown kid, at most once per RefetchInterval. A token
// with an unknown kid past that rate is refused at once: it never waits
// for the limiter, so a stream of made-up kids costs one fetch per
// interval and nothing else.
type jwks struct {
	storage jwkset.Storage
	timeout time.Duration
	ctx     context.Context // ends the refresh goroutine
	cancel  context.CancelFunc
	idle    *http.Transport
}

// maxJWKSBytes bounds a key set's size: a provider that sends more is
// refused rather than read to the end.
const maxJWKSBytes = 1 << 20

// limitedBody cuts every response body at maxJWKSBytes.
type limitedBody struct{ next http.RoundTripper }

func (l limitedBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, maxJWKSBytes), resp.Body}
	}
	return resp, err
}

func newJWKS(url string, cfg Config, log *slog.Logger) (*jwks, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client := &http.Client{Timeout: cfg.JWKSTimeout, Transport: limitedBody{transport}}
	ctx, cancel := context.WithCancel(context.Background())
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		Client:            client,
		HTTPTimeout:       cfg.JWKSTimeout,
		RefreshInterval:   cfg.JWKSRefreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSRefetchInterval), 1),
		// The limiter's wait and the refetch share this bound; with the
		// refetch interval longer than it, a kid past the rate is refused
		// at once rather than waiting for the next permitted fetch.
		RateLimitWaitMax: cfg.JWKSTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) { log.Warn("jwks fetch failed", "url", u, "err", err) }
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("jwks %s: %w", url, err)
	}
	return &jwks{storage: kf.Storage(), timeout: cfg.JWKSTimeout, ctx: ctx, cancel: cancel, idle: transport}, nil
}

// keys returns the keys that may verify a token signed with alg: the key
// named kid (refetching the set if it is unknown, within the rate), or
// every key when kid is "". A key verifies only the algorithm of its
// "alg" member, or the one algFor gives its type.
func (j *jwks) keys(kid, alg string) ([]jwt.VerificationKey, error) {
	ctx, cancel := context.WithTimeout(j.ctx, j.timeout)
	defer cancel()
	var set []jwkset.JWK
	if kid != "" {
		k, err := j.storage.KeyRead(ctx, kid)
		if err != nil {
			// Unknown, even after a refetch, or unknown with the refetch
			// rate spent: either way no key, and the caller says so.
			return nil, nil
		}
		set = []jwkset.JWK{k}
	} else {
		all, err := j.storage.KeyReadAll(ctx)
		if err != nil {
			return nil, err
		}
		set = all
	}
	var out []jwt.VerificationKey
	for _, k := range set {
		key := k.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public() // a private JWK in the set: verify with its public half
		}
		pinned := k.Marshal().ALG.String()
		if pinned == "" {
			pinned = algFor(key)
		}
		if pinned == alg {
			out = append(out, key)
		}
	}
	return out, nil
}

// close ends the refresh goroutine and drops idle connections.
func (j *jwks) close() {
	j.cancel()
	j.idle.CloseIdleConnections()
}
