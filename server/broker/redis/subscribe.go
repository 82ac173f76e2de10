package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// topicState is one topic this node subscribes to, or is (un)subscribing.
type topicState struct {
	mu   sync.Mutex // serialises subscribing and unsubscribing the topic with Redis
	refs int        // guarded by mu
	live atomic.Bool
	// holders counts the callers using this state; guarded by Broker.subMu.
	// The state is dropped when no caller holds it and refs is 0.
	holders int
	gap     topicGap // what this node knows of the topic's log (gaps.go)
}

// state is topic's state, nil if this node neither subscribes to it nor
// is (un)subscribing it.
func (b *Broker) state(topic string) *topicState {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	return b.topics[topic]
}

func (b *Broker) live(topic string) bool {
	st := b.state(topic)
	return st != nil && st.live.Load()
}

// hold returns topic's state, marked as in use by the caller until release.
func (b *Broker) hold(topic string) *topicState {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	st := b.topics[topic]
	if st == nil {
		st = &topicState{}
		b.topics[topic] = st
	}
	st.holders++
	return st
}

func (b *Broker) release(topic string, st *topicState) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	st.holders--
	if st.holders == 0 && !st.live.Load() && b.topics[topic] == st {
		delete(b.topics, topic)
	}
}

// Subscribe implements hub.Broker. Subscriptions are counted: a topic stays
// subscribed until as many Unsubscribe calls. The first one returns once
// Redis has confirmed the subscription, so that what is published after it
// returns is delivered, and once it has read where the topic's log stands,
// before the SUBSCRIBE and after it (two more round trips), so that what
// this node misses of it from then on is read back (gaps.go).
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	st := b.hold(topic)
	defer b.release(topic, st)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refs > 0 {
		st.refs++
		return nil
	}
	if b.down.Load() {
		return fmt.Errorf("subscribe %s: %w", topic, errUnreachable)
	}
	// Where the log stands before the SUBSCRIBE, in case the connection
	// is lost before the floor is read (topicGap).
	losses := b.losses.Load()
	pre, preErr := b.logPositions(ctx, []string{topic})
	ch := b.channel(topic)
	err := b.ps.Subscribe(ctx, ch)
	if err == nil {
		err = b.sync(ctx)
	}
	if err != nil {
		// go-redis remembers the channel even when the SUBSCRIBE failed, and
		// would subscribe it again on reconnecting: make it forget.
		_ = b.ps.Unsubscribe(context.WithoutCancel(ctx), ch)
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	st.refs = 1
	if preErr != nil {
		b.reset(&st.gap, hub.Position{}, false, losses)
	} else {
		b.reset(&st.gap, pre[0], true, losses)
	}
	st.live.Store(true)
	b.noteFloor(ctx, topic, st)
	return nil
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	st := b.hold(topic)
	defer b.release(topic, st)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refs == 0 {
		return nil
	}
	if st.refs--; st.refs > 0 {
		return nil
	}
	// Taken so that no event of topic is being handled when Unsubscribe
	// returns; the receive loop drops those still on their way.
	b.dispatchMu.Lock()
	st.live.Store(false)
	b.dispatchMu.Unlock()
	st.gap.mu.Lock()
	b.drop(&st.gap) // what waited behind a gap goes nowhere now
	st.gap.mu.Unlock()
	b.releaseEchoes(topic)
	// Even when the UNSUBSCRIBE cannot be sent, go-redis has forgotten the
	// channel and will not subscribe it again on reconnecting.
	if err := b.ps.Unsubscribe(ctx, b.channel(topic)); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", topic, err)
	}
	return nil
}

// sync returns once Redis has answered a PING sent on the pub/sub connection
// after everything sent on it before: Redis answers a connection's commands
// in order, so by then an earlier SUBSCRIBE is in effect. (go-redis
// resubscribes every channel on a new connection before sending anything
// else, so a reconnection in between does not break this.)
func (b *Broker) sync(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.SyncTimeout)
		defer cancel()
	}
	b.pingMu.Lock()
	b.pingSeq++
	token := fmt.Sprintf("sync-%d", b.pingSeq)
	done := make(chan struct{})
	b.pings[token] = done
	b.pingMu.Unlock()
	defer func() {
		b.pingMu.Lock()
		delete(b.pings, token)
		b.pingMu.Unlock()
	}()
	if err := b.ps.Ping(ctx, token); err != nil {
		return err
	}
	// Given up early if Redis is found not to answer meanwhile. A reply
	// late by CallTimeout may be a slow reader here, or a hung Redis: a
	// PING on another connection, bounded as every call, tells which.
	tick := time.NewTicker(b.cfg.ProbeInterval)
	defer tick.Stop()
	late := time.After(b.cfg.CallTimeout)
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for redis to confirm: %w", ctx.Err())
		case <-late:
			b.ping(ctx)
		case <-tick.C:
		}
		if b.down.Load() {
			return fmt.Errorf("waiting for redis to confirm: %w", errUnreachable)
		}
	}
}

func (b *Broker) pong(payload string) {
	b.pingMu.Lock()
	if done := b.pings[payload]; done != nil {
		close(done)
		delete(b.pings, payload)
	}
	b.pingMu.Unlock()
}

func (b *Broker) subscribedCount() int {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	n := 0
	for _, st := range b.topics {
		if st.live.Load() {
			n++
		}
	}
	return n
}
