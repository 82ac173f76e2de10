package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// verified remembers the tokens Verify accepted, so that a token seen again
// (a reconnect, every RPC of a gRPC client) is not parsed and checked
// again. An entry holds until the token's exp plus the leeway, when it
// would be refused; nbf and iat, once passed, stay passed. It is used only
// with keys fixed for the Authenticator's life (secrets and PEM keys): a
// JWKS key may be withdrawn, and a token it signed must then be refused.
//
// Tokens are keyed by their SHA-256, which binds the whole token and is
// far smaller than it; at most verifiedEntries are kept, about 200 bytes
// each, besides the identities' strings that the sessions share.
type verified struct {
	mu        sync.Mutex
	entries   map[[sha256.Size]byte]verifiedEntry
	lastSweep time.Time // when put last dropped the entries that ran out
}

type verifiedEntry struct {
	who   hub.Identity
	until time.Time // refused from then on: exp plus the leeway
}

// verifiedEntries bounds the cache: enough for every connection of a busy
// node to reconnect at once.
const verifiedEntries = 16 << 10

func newVerified() *verified {
	return &verified{entries: make(map[[sha256.Size]byte]verifiedEntry)}
}

// tokenKey is what verified keys token by.
func tokenKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns the identity of the token keyed k if it was verified and is
// still valid at now.
func (v *verified) get(k [sha256.Size]byte, now time.Time) (hub.Identity, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[k]
	if !ok {
		return hub.Identity{}, false
	}
	if !now.Before(e.until) {
		delete(v.entries, k)
		return hub.Identity{}, false
	}
	return e.who, true
}

// sweepEvery bounds how often a full cache looks for entries that ran out:
// a scan of every entry, under the lock every Verify takes, on each new
// token would make a reconnect storm against a full cache quadratic.
const sweepEvery = time.Minute

// put remembers that the token keyed k carries who until until. When
// full, it drops the entries that have run out (at most every sweepEvery),
// and one entry if that freed none.
func (v *verified) put(k [sha256.Size]byte, who hub.Identity, until, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.entries) >= verifiedEntries && now.Sub(v.lastSweep) >= sweepEvery {
		v.lastSweep = now
		for old, e := range v.entries {
			if !now.Before(e.until) {
				delete(v.entries, old)
			}
		}
	}
	if len(v.entries) >= verifiedEntries {
		for old := range v.entries {
			delete(v.entries, old)
			break
		}
	}
	v.entries[k] = verifiedEntry{who: who, until: until}
}
