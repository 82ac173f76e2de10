package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// echo is a Publish (or Append) call waiting for its own event. The entry
// stays until the call drops it (dropEcho), so that a call whose reply was
// late can still tell that its event came back.
type echo struct {
	topic string
	done  chan struct{} // closed, and set to nil, once the wait is over
	back  bool          // the event came back from Redis
	held  bool          // the event waits behind a gap (see topicGap)
	pos   hub.Position  // where the event came back logged (an Append's), if it was
}

// Publish implements hub.Broker. When this node subscribes to topic, Publish
// returns once its own handler has been given ev, as with the memory broker:
// a session that publishes, then leaves, has seen its own event.
//
// While Redis is unreachable, or does not take ev within CallTimeout, or
// refuses it (an error reply), ev is delivered to this node's own
// subscribers only, and Publish succeeds: the node's sessions go on talking
// among themselves. Metrics.LocalOnly counts these. While Redis answers,
// ev keeps its place then too: behind the live events of topic held behind
// a gap (see topicGap); Publish returns once it has been handed over, or
// after at most about SyncTimeout plus a CallTimeout. While Redis is
// unreachable, or once the broker is closed, ev is handed over at once.
//
// A broker fenced off (another holds its node id: claim.go) refuses ev.
func (b *Broker) Publish(ctx context.Context, topic string, ev *hub.Event) error {
	if b.fenced.Load() {
		return fmt.Errorf("publish to %s: %w", topic, b.errFenced())
	}
	// Read once, so that an event noted as a stray is the one delivered
	// here without Redis, and the other way round.
	live := b.live(topic)
	if b.up.Load() {
		seq, done := b.expectEcho(topic, live)
		payload, err := encodeEvent(ev, b.claim, seq)
		sent := err == nil
		if sent {
			err = b.publish(ctx, topic, payload)
		}
		if err == nil {
			b.metrics.Published.Add(1)
			b.awaitEcho(ctx, seq, done)
			return nil
		}
		// Redis may have published ev all the same, or may still, unless
		// the call was not even sent or Redis refused it. In one step with
		// forgetting the wait, ev is either found back (only the reply was
		// late: ev is published) or, if it is about to be delivered here
		// without Redis, noted as a stray, which is dropped when it comes.
		var refused goredis.Error // an error reply: NOPERM, BUSY, OOM...
		mayRun := sent && ctx.Err() == nil && !errors.Is(err, errUnreachable) && !errors.As(err, &refused)
		if back, _ := b.abandonEcho(seq, mayRun); back { // seq is 0, waiting for nothing, unless live
			b.metrics.Published.Add(1)
			b.awaitEcho(ctx, seq, done)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		if !errors.Is(err, errUnreachable) {
			b.log.Warn("publish failed; delivering on this node only", "topic", topic, "err", err)
		}
	}
	b.metrics.LocalOnly.Add(1)
	if !live {
		return nil
	}
	if b.down.Load() || b.closed.Load() || !b.liveHeld(topic) {
		// Nothing live waits behind a gap, or none will be read back soon
		// (Redis is unreachable, or the broker closed): ev goes at once,
		// not held up to SyncTimeout behind a read-back's mark that every
		// read fails to fill (not if unsubscribed meanwhile).
		b.dispatchIfLive(topic, ev)
		return nil
	}
	// In its place: behind the live events of a gap.
	b.deliverOwn(ctx, topic, ev)
	return nil
}

// deliverOwn hands this node's own event ev, which Redis did not bring
// back over pub/sub, to topic's handler in its place (behind what waits
// behind a gap), and waits until it has been handed over, or for the wait
// of an echo (awaitEcho).
func (b *Broker) deliverOwn(ctx context.Context, topic string, ev *hub.Event) {
	seq, done := b.expectEcho(topic, true)
	b.deliver(topic, ev, seq)
	b.awaitEcho(ctx, seq, done)
}

func (b *Broker) publish(ctx context.Context, topic string, payload []byte) error {
	return b.call(ctx, func(ctx context.Context) error {
		return b.rdb.Publish(ctx, b.channel(topic), payload).Err()
	})
}

const (
	// strayTTL is how long a stray is remembered: far longer than any
	// pause after which Redis would still run what it was sent before.
	strayTTL = 10 * time.Minute
	// maxStrays bounds the strays remembered. They are few (one per call
	// in flight when Redis stopped answering: later calls are not sent),
	// unless Redis keeps coming and going; past the bound a late event of
	// this node's may be delivered here twice.
	maxStrays = 4096
)

// abandonEcho forgets the wait for event seq of this node, whose publish
// failed, unless the event came back all the same: then it reports so, and
// the caller still waits for it to have been handled (awaitEcho). If it did
// not come back and stray is set, the event is remembered as delivered here
// without Redis, in the same step: it cannot come back in between
// unnoticed.
func (b *Broker) abandonEcho(seq uint64, stray bool) (back bool, pos hub.Position) {
	if seq == 0 {
		return false, hub.Position{}
	}
	now := time.Now()
	b.echoMu.Lock()
	defer b.echoMu.Unlock()
	if e := b.echoes[seq]; e.back {
		return true, e.pos
	}
	delete(b.echoes, seq)
	if !stray {
		return false, hub.Position{}
	}
	if len(b.strays) >= maxStrays {
		b.log.Warn("too many strays remembered; this one may be delivered here twice", "max", maxStrays)
		return false, hub.Position{}
	}
	b.strays[seq] = now
	return false, hub.Position{}
}

// sweepStrays forgets the strays older than strayTTL. The heartbeat runs it.
func (b *Broker) sweepStrays(now time.Time) {
	b.echoMu.Lock()
	defer b.echoMu.Unlock()
	for s, at := range b.strays {
		if now.Sub(at) > strayTTL {
			delete(b.strays, s)
		}
	}
}

// cameBack notes that event seq of this node came back from Redis, and
// reports whether it is a stray, already delivered here (forgetting it).
func (b *Broker) cameBack(seq uint64, pos hub.Position) (stray bool) {
	b.echoMu.Lock()
	defer b.echoMu.Unlock()
	if _, ok := b.strays[seq]; ok {
		delete(b.strays, seq)
		return true
	}
	if e, ok := b.echoes[seq]; ok {
		e.back, e.pos = true, pos
		b.echoes[seq] = e
	}
	return false
}

// expectEcho registers a Publish to topic that will wait for its event to
// come back, if this node subscribes to topic (live). It returns 0 if not.
func (b *Broker) expectEcho(topic string, live bool) (uint64, chan struct{}) {
	if !live {
		return 0, nil
	}
	done := make(chan struct{})
	b.echoMu.Lock()
	b.echoSeq++
	seq := b.echoSeq
	b.echoes[seq] = echo{topic: topic, done: done}
	b.echoMu.Unlock()
	return seq, done
}

// awaitEcho waits for the event numbered seq to have been handled here. It
// gives up, without error, after SyncTimeout or when ctx ends: the event is
// published; only this node's copy is late or, if the pub/sub connection
// broke meanwhile, lost. An event held behind a gap is waited for a
// CallTimeout longer: the gap is given up SyncTimeout after the event was
// held, late by the read of Redis that may be under way then.
func (b *Broker) awaitEcho(ctx context.Context, seq uint64, done chan struct{}) {
	if done == nil {
		return
	}
	defer b.dropEcho(seq)
	if b.closed.Load() { // nothing comes back, nor is given up, after Close
		return
	}
	t := time.NewTimer(b.cfg.SyncTimeout)
	defer t.Stop()
	for extra := b.cfg.CallTimeout; ; extra = 0 {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if extra == 0 || !b.isHeld(seq) {
			b.log.Warn("own event did not come back from redis in time", "timeout", b.cfg.SyncTimeout)
			return
		}
		t.Reset(extra)
	}
}

// echoHeld notes that event seq of this node (if not 0) waits behind a
// gap.
func (b *Broker) echoHeld(seq uint64) {
	if seq == 0 {
		return
	}
	b.echoMu.Lock()
	if e, ok := b.echoes[seq]; ok {
		e.held = true
		b.echoes[seq] = e
	}
	b.echoMu.Unlock()
}

// isHeld reports whether event seq of this node waits, or waited, behind
// a gap.
func (b *Broker) isHeld(seq uint64) bool {
	b.echoMu.Lock()
	defer b.echoMu.Unlock()
	return b.echoes[seq].held
}

func (b *Broker) dropEcho(seq uint64) {
	if seq == 0 {
		return
	}
	b.echoMu.Lock()
	delete(b.echoes, seq)
	b.echoMu.Unlock()
}

// echoed releases the Publish waiting for event seq of this node, if any:
// its event has been handled here.
func (b *Broker) echoed(seq uint64) {
	if seq == 0 {
		return
	}
	b.echoMu.Lock()
	if e, ok := b.echoes[seq]; ok && e.done != nil {
		close(e.done)
		e.done = nil
		b.echoes[seq] = e
	}
	b.echoMu.Unlock()
}

// releaseEchoes releases the Publish calls waiting on topic (all topics if
// topic is empty): their events will not come back. An event that has come
// back is being handled: its call is released once it has been (echoed).
func (b *Broker) releaseEchoes(topic string) {
	b.echoMu.Lock()
	for seq, e := range b.echoes {
		if e.done != nil && !e.back && (topic == "" || e.topic == topic) {
			close(e.done)
			e.done = nil
			b.echoes[seq] = e
		}
	}
	b.echoMu.Unlock()
}
