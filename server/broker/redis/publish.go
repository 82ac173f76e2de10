package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// echo is a Publish call waiting for its own event.
type echo struct {
	topic string
	done  chan struct{}
}

// Publish implements hub.Broker. When this node subscribes to topic, Publish
// returns once its own handler has been given ev, as with the memory broker:
// a session that publishes, then leaves, has seen its own event.
//
// While Redis is unreachable, or does not take ev within CallTimeout, ev is
// delivered to this node's own subscribers only, and Publish succeeds: the
// node's sessions go on talking among themselves. Metrics.LocalOnly counts
// these.
func (b *Broker) Publish(ctx context.Context, topic string, ev *hub.Event) error {
	var stray uint64 // ev's number if Redis may still publish it
	if b.up.Load() {
		seq, done := b.expectEcho(topic)
		payload, err := encodeEvent(ev, b.cfg.NodeID, seq)
		if err == nil {
			err = b.publish(ctx, topic, payload)
		}
		if err == nil {
			b.metrics.Published.Add(1)
			b.awaitEcho(ctx, seq, done)
			return nil
		}
		b.dropEcho(seq)
		if ctx.Err() != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		if !errors.Is(err, errUnreachable) {
			stray = seq
			b.log.Warn("publish failed; delivering on this node only", "topic", topic, "err", err)
		}
	}
	b.metrics.LocalOnly.Add(1)
	if b.live(topic) {
		b.noteStray(stray)
		b.dispatch(topic, ev)
	}
	return nil
}

func (b *Broker) publish(ctx context.Context, topic string, payload []byte) error {
	return b.call(ctx, func(ctx context.Context) error {
		return b.rdb.Publish(ctx, b.channel(topic), payload).Err()
	})
}

// strayTTL is how long a stray is remembered: far longer than any pause
// after which Redis would still run what it was sent before.
const strayTTL = 10 * time.Minute

// noteStray remembers event seq of this node, sent to Redis but delivered
// here without it.
func (b *Broker) noteStray(seq uint64) {
	if seq == 0 {
		return
	}
	now := time.Now()
	b.echoMu.Lock()
	for s, at := range b.strays { // few: one per call in flight when Redis stopped answering
		if now.Sub(at) > strayTTL {
			delete(b.strays, s)
		}
	}
	b.strays[seq] = now
	b.echoMu.Unlock()
}

// stray reports whether event seq of this node was already delivered here,
// and forgets it.
func (b *Broker) stray(seq uint64) bool {
	b.echoMu.Lock()
	defer b.echoMu.Unlock()
	_, ok := b.strays[seq]
	delete(b.strays, seq)
	return ok
}

// expectEcho registers a Publish to topic that will wait for its event to
// come back, if this node subscribes to topic. It returns 0 if not.
func (b *Broker) expectEcho(topic string) (uint64, chan struct{}) {
	if !b.live(topic) {
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
// broke meanwhile, lost.
func (b *Broker) awaitEcho(ctx context.Context, seq uint64, done chan struct{}) {
	if done == nil {
		return
	}
	defer b.dropEcho(seq)
	t := time.NewTimer(b.cfg.SyncTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
		b.log.Warn("own event did not come back from redis in time", "timeout", b.cfg.SyncTimeout)
	}
}

func (b *Broker) dropEcho(seq uint64) {
	if seq == 0 {
		return
	}
	b.echoMu.Lock()
	delete(b.echoes, seq)
	b.echoMu.Unlock()
}

// echoed releases the Publish waiting for event seq of this node, if any.
func (b *Broker) echoed(seq uint64) {
	b.echoMu.Lock()
	if e, ok := b.echoes[seq]; ok {
		close(e.done)
		delete(b.echoes, seq)
	}
	b.echoMu.Unlock()
}

// releaseEchoes releases the Publish calls waiting on topic (all topics if
// topic is empty): their events will not come back.
func (b *Broker) releaseEchoes(topic string) {
	b.echoMu.Lock()
	for seq, e := range b.echoes {
		if topic == "" || e.topic == topic {
			close(e.done)
			delete(b.echoes, seq)
		}
	}
	b.echoMu.Unlock()
}
