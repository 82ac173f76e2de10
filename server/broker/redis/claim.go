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

// A running broker can lose its claim: cut off from Redis for longer than
// PresenceTTL, it is taken for dead, and a broker started meanwhile with
// the same id (an orchestrator's replacement) claims it and removes its
// presence. The first broker's next heartbeat finds the id held: from then
// until a heartbeat claims it again (the other has closed, or died and its
// claim expired) it is fenced off. Its connections and memberships are
// not recorded (AddConn and AddMember fail; removals go on: they name
// connections of its own), and what it publishes or appends is refused
// rather than sent under the other broker's id. Each broker knows its own
// events by its token, which they carry (codec.go), not by the node id:
// neither takes the other's for its own, the fenced one's sent late by
// Redis included.
// Fenced reports it, FenceChanged tells of each change, Metrics.Fenced
// counts the times. The heartbeat that claims the id again removes what
// presence the id has left (the other's, if it died), registers this
// node's again and tells the cluster its users are back.

// Fenced reports whether another broker holds this broker's node id, which
// it is fenced off from until it claims it again: its publishes, appends
// and new connections and memberships fail. A node is not ready meanwhile.
func (b *Broker) Fenced() bool { return b.fenced.Load() }

// errFenced is the error of what a fenced broker refuses.
func (b *Broker) errFenced() error {
	return fmt.Errorf("%w: %q was claimed by another broker while this one was cut off from redis; "+
		"this node is fenced off until it claims it again", ErrNodeIDTaken, b.cfg.NodeID)
}

// fence notes that another broker holds the node id.
func (b *Broker) fence() {
	if b.fenced.Swap(true) {
		return
	}
	b.fenceChange.changed()
	b.metrics.Fenced.Add(1)
	b.presence.toldLeft.Store(true)
	b.releaseEchoes("") // none of this node's events will come back
	b.log.Error("node id claimed by another broker: fenced off (no publishing, no new presence) until it is claimed again",
		"node", b.cfg.NodeID)
}

// unfence notes that this broker holds the node id again.
func (b *Broker) unfence() {
	if b.fenced.Swap(false) {
		b.fenceChange.changed()
		b.log.Warn("node id claimed again: no longer fenced off", "node", b.cfg.NodeID)
	}
}

// idTaken is the error of a heartbeat that found the node id claimed by
// another broker, whose claim expires in ms milliseconds unless renewed.
func (b *Broker) idTaken(ms int64) error {
	return fmt.Errorf("%w: %q is held by a live broker of the cluster; it is freed when that broker closes, "+
		"or %v after its last heartbeat if it died (within %v now)",
		ErrNodeIDTaken, b.cfg.NodeID, b.cfg.PresenceTTL, (time.Duration(max(ms, 0)) * time.Millisecond).Round(time.Millisecond))
}
