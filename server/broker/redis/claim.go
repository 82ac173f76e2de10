package redis

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrNodeIDTaken is the error of New when another broker of the cluster
// (the same Redis and Prefix) is live with the same Config.NodeID: two
// brokers under one id would share one presence, and each would take the
// other's events for its own.
//
// A broker claims its id in Redis (P:claim:<node>, holding a token of its
// own) in the script that registers it, and renews the claim on every
// heartbeat, for PresenceTTL each time, in the same step as its presence.
// Close releases it. A broker that died without closing (kill -9, a lost
// host) holds it until PresenceTTL after its last heartbeat (3s by
// default, Redis's clock), as long as its presence: a restart with the same
// id is refused until then, and then starts without taking over any of the
// dead broker's presence (its connections leave, as a crashed node's do).
var ErrNodeIDTaken = errors.New("node id in use")

// newClaimToken is a broker's own token, telling its claim of the node id
// from another broker's.
func newClaimToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// idTaken is the error of a heartbeat that found the node id claimed by
// another broker, whose claim expires in ms milliseconds unless renewed.
func (b *Broker) idTaken(ms int64) error {
	return fmt.Errorf("%w: %q is held by a live broker of the cluster; it is freed when that broker closes, "+
		"or %v after its last heartbeat if it died (within %v now)",
		ErrNodeIDTaken, b.cfg.NodeID, b.cfg.PresenceTTL, (time.Duration(max(ms, 0)) * time.Millisecond).Round(time.Millisecond))
}
