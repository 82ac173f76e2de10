package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// errUnreachable is the error of a call not even sent: Redis did not
// answer a call within CallTimeout, and has not answered a probe since.
var errUnreachable = errors.New("redis unreachable")

// A hung Redis (stopped, overloaded, behind a dropped network) accepts
// connections and writes but answers nothing: every call would wait out its
// timeout, one after another, and a node's own sessions would stop talking
// to each other. So the broker bounds each call by CallTimeout and, once one
// call is not answered in time, takes Redis for unreachable: calls fail at
// once (Publish delivers on this node only, Append and presence changes are
// refused) until a PING every ProbeInterval is answered. Then the node
// registers its presence again at once.

// call runs f, one call to Redis, bounded by CallTimeout, and settles its
// outcome: f is not run at all while Redis is taken for unreachable (the
// error is errUnreachable, at once), and an f that fails the way an
// unreachable Redis makes calls fail takes Redis for unreachable (settle).
// f must make its calls with the ctx it is given.
func (b *Broker) call(ctx context.Context, f func(ctx context.Context) error) error {
	if b.down.Load() {
		return errUnreachable
	}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel()
	return b.settle(ctx, f(cctx))
}

// settle notes the outcome of a call to Redis and returns err. An error
// from Redis itself (a script error, a missing key) says Redis answers; a
// caller that gave up (ctx ended) says nothing about Redis; any other
// error, a call's CallTimeout running out included, takes Redis for
// unreachable.
func (b *Broker) settle(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, errUnreachable) || ctx.Err() != nil {
		return err
	}
	var reply goredis.Error
	if errors.As(err, &reply) { // goredis.Nil is one too
		return err
	}
	b.unreachable(err)
	return err
}

// ping checks that Redis answers a call within CallTimeout; if it does
// not, Redis is taken for unreachable.
func (b *Broker) ping(ctx context.Context) {
	b.call(ctx, func(ctx context.Context) error { return b.rdb.Ping(ctx).Err() })
}

// unreachable takes Redis for unreachable until a probe is answered.
func (b *Broker) unreachable(err error) {
	if b.down.Swap(true) {
		return
	}
	b.metrics.Unreachable.Add(1)
	b.presence.lost.Store(true)
	// Nobody waits for an event to come back through a Redis that does not
	// answer: those Publish calls return now.
	b.releaseEchoes("")
	b.log.Error("redis does not answer: serving this node's sessions only until it does",
		"err", err, "call_timeout", b.cfg.CallTimeout)
	kick(b.probeNow)
}

// kick wakes the goroutine waiting on ch, if it is not awake already.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// probe PINGs Redis every ProbeInterval while it is taken for unreachable,
// until ctx ends. When Redis answers, calls go to it again and the
// heartbeat runs at once, registering this node's presence again.
func (b *Broker) probe(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.probeNow:
		}
		since := time.Now()
		for b.down.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.cfg.ProbeInterval):
			}
			pctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
			err := b.rdb.Ping(pctx).Err()
			cancel()
			if err == nil {
				b.down.Store(false)
				b.log.Warn("redis answers again", "down_for", time.Since(since).Round(time.Millisecond))
				kick(b.beatNow)
				kick(b.recvNow)
			}
		}
	}
}
