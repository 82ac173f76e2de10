package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// dispatchIfLive hands ev to the handler, one call at a time, if this node
// still subscribes to topic: an UNSUBSCRIBE takes effect in Redis a little
// after Unsubscribe returns.
func (b *Broker) dispatchIfLive(topic string, ev *hub.Event) {
	st := b.state(topic)
	h := b.handler.Load()
	if st == nil || h == nil {
		return
	}
	b.dispatchMu.Lock()
	defer b.dispatchMu.Unlock()
	if st.live.Load() {
		(*h)(topic, ev)
	}
}

// receive reads the pub/sub connection until ctx ends, dispatching messages
// in order. go-redis reconnects a broken connection and subscribes it again
// to every channel on the next read; receive retries with backoff meanwhile.
// An idle connection is PINGed; one that leaves the PING unanswered for
// longer than silentFor is taken for broken.
func (b *Broker) receive(ctx context.Context) {
	const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
	backoff := minBackoff
	silentFor := max(2*b.cfg.Heartbeat, 4*b.cfg.CallTimeout)
	var downSince, pinged time.Time // pinged: when an idle PING went out, unanswered so far
	for ctx.Err() == nil {
		msg, err := b.ps.ReceiveTimeout(ctx, b.cfg.Heartbeat)
		var ne net.Error
		idle := err != nil && errors.As(err, &ne) && ne.Timeout()
		if idle && !pinged.IsZero() && time.Since(pinged) > silentFor {
			err, idle = b.dropPubSub(ctx, silentFor), false
		}
		if err != nil && !idle {
			pinged = time.Time{}
			if ctx.Err() != nil || errors.Is(err, goredis.ErrClosed) {
				return
			}
			if b.up.Swap(false) {
				b.losses.Add(1)
				downSince = time.Now()
				b.releaseEchoes("")
				b.presence.lost.Store(true)
				b.log.Error("redis pub/sub connection lost: serving this node's sessions only until it returns", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			case <-b.recvNow:
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if msg == nil { // read timed out: the connection is idle; make sure it lives
			if pinged.IsZero() {
				pinged = time.Now()
				_ = b.ps.Ping(ctx)
			}
			continue
		}
		// Redis answers on this connection.
		pinged = time.Time{}
		backoff = minBackoff
		if !b.up.Swap(true) {
			b.metrics.Reconnects.Add(1)
			kick(b.beatNow) // registers this node's presence again now that it receives
			b.log.Warn("redis pub/sub connection back; resubscribed", "topics", b.subscribedCount(),
				"down_for", time.Since(downSince).Round(time.Millisecond))
			// Read back by its own goroutine: this one goes on handing
			// over what comes live meanwhile.
			b.readBackDue.Store(true)
			kick(b.readBackNow)
		}
		switch m := msg.(type) {
		case *goredis.Message:
			b.received(m)
		case *goredis.Pong:
			b.pong(m.Payload)
		}
	}
}

// dropPubSub makes go-redis replace a pub/sub connection Redis does not
// answer on (hung, or behind a network that drops packets): go-redis does so
// only when a write to it fails, and a write whose deadline has passed fails
// at once. The next read dials again and subscribes every channel.
func (b *Broker) dropPubSub(ctx context.Context, silentFor time.Duration) error {
	expired, cancel := context.WithDeadline(ctx, time.Now())
	defer cancel()
	_ = b.ps.Ping(expired)
	return fmt.Errorf("pub/sub connection silent for %v", silentFor)
}

func (b *Broker) received(m *goredis.Message) {
	b.metrics.Received.Add(1)
	topic, ok := strings.CutPrefix(m.Channel, b.prefix)
	if !ok {
		return
	}
	ev, w, err := decodeEvent(m.Payload)
	if err != nil {
		b.log.Error("dropping event", "topic", topic, "err", err)
		return
	}
	// By this broker's token: a broker with the same node id (claim.go)
	// publishes under the same Origin, numbering its own events from 1.
	own := w.Seq != 0 && w.Claim == b.claim
	if own && b.cameBack(w.Seq, hub.Position{Offset: ev.Offset, Epoch: ev.Epoch}) {
		return // delivered here when Redis did not take it in time
	}
	var echo uint64
	if own {
		echo = w.Seq
	}
	b.deliver(topic, ev, echo)
}
