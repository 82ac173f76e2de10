package redis

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// heldCall holds one call of a broker's to Redis (the first that match
// picks: a command, or a pipeline's commands) until the test lets it go,
// as a slow network would: before Redis runs it (before) or after, its
// reply on the way back. It counts every call match picks.
type heldCall struct {
	match   func(cmds []goredis.Cmder) bool
	before  bool
	armed   atomic.Bool
	calls   atomic.Int32
	held    chan struct{} // closed once the call is held
	release chan struct{} // closed to let it go
}

// holdCall installs on b a hook holding the first call match picks; the
// test lets it go when it ends, if not before. Call it while b makes no
// call of its own (a quiet broker).
func holdCall(t *testing.T, b *Broker, before bool, match func(cmds []goredis.Cmder) bool) *heldCall {
	h := &heldCall{match: match, before: before, held: make(chan struct{}), release: make(chan struct{})}
	h.armed.Store(true)
	b.rdb.AddHook(h)
	t.Cleanup(h.letGo)
	return h
}

func (h *heldCall) letGo() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// wait waits until the call is held.
func (h *heldCall) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.held:
	case <-time.After(waitTimeout):
		t.Fatal("the call to hold was not made")
	}
}

func (h *heldCall) run(cmds []goredis.Cmder, next func() error) error {
	if !h.match(cmds) {
		return next()
	}
	h.calls.Add(1)
	if !h.armed.CompareAndSwap(true, false) {
		return next()
	}
	var err error
	if !h.before {
		err = next()
	}
	close(h.held)
	<-h.release
	if h.before {
		err = next()
	}
	return err
}

func (*heldCall) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *heldCall) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		return h.run([]goredis.Cmder{cmd}, func() error { return next(ctx, cmd) })
	}
}

func (h *heldCall) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		return h.run(cmds, func() error { return next(ctx, cmds) })
	}
}

// readsLog picks the calls that read topic's log (ReadLog's script).
func (b *Broker) readsLog(topic string) func(cmds []goredis.Cmder) bool {
	key := b.logKeys(topic)[0]
	return func(cmds []goredis.Cmder) bool {
		return len(cmds) == 1 && (cmds[0].Name() == "evalsha" || cmds[0].Name() == "eval") &&
			slices.Contains(cmds[0].Args(), any(key))
	}
}

// appendTo appends a message with text to topic's log through from.
func (r *cutRig) appendTo(from *Broker, topic, text string) {
	r.t.Helper()
	ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: text}
	if _, err := from.Append(r.ctx, topic, ev, hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); err != nil {
		r.t.Fatalf("%s appends %s to %s: %v", from.NodeID(), text, topic, err)
	}
}

// A node whose pub/sub connection returns hands over live events while it
// reads back what it missed: reading back, one log read per room behind
// (thousands on a busy node), does not hold up the pub/sub reader. The test
// holds the read-back of one room's log, as a slow one.
func TestLiveEventsFlowWhileMissedOnesAreReadBack(t *testing.T) {
	r := newCutRig(t, quiet, "room:behind")
	const live = "room:live"
	if err := r.sub.Subscribe(r.ctx, live); err != nil {
		t.Fatal(err)
	}
	hold := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
	r.cut()
	eventually(t, waitTimeout, "sub notices its pub/sub connection is down", func() bool { return !r.sub.up.Load() })
	r.send(r.pub, "missed")
	r.restore()
	hold.wait(t)
	r.appendTo(r.pub, live, "live")
	r.expect("live") // while "missed" is being read back
	hold.letGo()
	r.expect("missed")
}
