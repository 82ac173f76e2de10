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

func (h *heldCall) run(ctx context.Context, cmds []goredis.Cmder, next func(context.Context) error) error {
	if !h.match(cmds) {
		return next(ctx)
	}
	h.calls.Add(1)
	if !h.armed.CompareAndSwap(true, false) {
		return next(ctx)
	}
	var err error
	if !h.before {
		err = next(ctx)
	}
	close(h.held)
	<-h.release
	if h.before {
		// Sent late, not slow: the caller's deadline is for Redis.
		err = next(context.WithoutCancel(ctx))
	}
	return err
}

func (*heldCall) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *heldCall) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		return h.run(ctx, []goredis.Cmder{cmd}, func(ctx context.Context) error { return next(ctx, cmd) })
	}
}

func (h *heldCall) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		return h.run(ctx, cmds, func(ctx context.Context) error { return next(ctx, cmds) })
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

// appendsTo picks the calls that append to topic's log (Append's script).
func (b *Broker) appendsTo(topic string) func(cmds []goredis.Cmder) bool {
	ch := b.channel(topic)
	return func(cmds []goredis.Cmder) bool {
		return len(cmds) == 1 && (cmds[0].Name() == "evalsha" || cmds[0].Name() == "eval") &&
			slices.Contains(cmds[0].Args(), any(ch))
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
// (thousands on a busy node), does not hold up the pub/sub reader for the
// other rooms. The test holds the read-back of one room's log, as a slow
// one, and sends the live event to another room.
func TestLiveEventsFlowWhileMissedOnesAreReadBack(t *testing.T) {
	r := newCutRig(t, quiet, "room:behind")
	const live = "room:live"
	if err := r.sub.Subscribe(r.ctx, live); err != nil {
		t.Fatal(err)
	}
	hold := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
	r.cutNoticed()
	r.send(r.pub, "missed")
	r.restore()
	hold.wait(t)
	r.appendTo(r.pub, live, "live")
	r.expect("live") // while "missed" is being read back
	hold.letGo()
	r.expect("missed")
}

// readsPosition picks the calls that read where topic's log stands, and
// no other topic's: a first Subscribe's two (before its SUBSCRIBE, and
// noteFloor's), or a read-back's while the node subscribes to topic only.
func (b *Broker) readsPosition(topic string) func(cmds []goredis.Cmder) bool {
	key := b.logKeys(topic)[0]
	return func(cmds []goredis.Cmder) bool {
		return len(cmds) == 1 && cmds[0].Name() == "hmget" && slices.Contains(cmds[0].Args(), any(key))
	}
}

// readsFloor picks the calls that read where topic's log stands once sub
// has subscribed to it: not a first Subscribe's read before its SUBSCRIBE.
func (r *cutRig) readsFloor(topic string) func(cmds []goredis.Cmder) bool {
	position := r.sub.readsPosition(topic)
	ch := r.sub.channel(topic)
	return func(cmds []goredis.Cmder) bool {
		if !position(cmds) {
			return false
		}
		n, err := r.rdb.PubSubNumSub(context.Background(), ch).Result()
		return err == nil && n[ch] > 0
	}
}

// subscribeBeforeFloor starts sub's Subscribe to room, and returns once
// the subscription is in effect and the read of where room's log stands
// is held, not yet sent: floor lets it go; subscribed tells Subscribe's
// outcome.
func (r *cutRig) subscribeBeforeFloor(room string) (floor *heldCall, subscribed <-chan error) {
	r.t.Helper()
	floor = holdCall(r.t, r.sub, true, r.readsFloor(room))
	done := make(chan error, 1)
	go func() { done <- r.sub.Subscribe(r.ctx, room) }()
	floor.wait(r.t)
	return floor, done
}

// pendingSyncs is how many PINGs on the pub/sub connection wait for their
// PONG.
func (b *Broker) pendingSyncs() int {
	b.pingMu.Lock()
	defer b.pingMu.Unlock()
	return len(b.pings)
}

// A read-back that runs while the pub/sub connection is live (the
// heartbeat's, when the last one could not be done) hands over none of a
// room's events before those still on their way through pub/sub: a room
// subscribed a moment ago, whose first events came after the subscription
// took effect and before its node read where the log stood, gets them
// all, in order. The test holds the first Subscribe's read of the log's
// position until e1 and e2 are appended, and the pub/sub reader (in the
// handler of another room's event) until the read-back has begun.
func TestReadBackWhileLiveKeepsEventsOnTheirWay(t *testing.T) {
	r := newCutRig(t, quiet, "room:stall")
	const room = "room:new"
	stalled, unstall := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(unstall) })
	r.sub.SetHandler(func(_ string, ev *hub.Event) {
		if ev.Message == "stall" {
			close(stalled)
			<-unstall
		}
		r.got <- ev.Message
	})
	floor := holdCall(t, r.sub, true, r.readsFloor(room))
	readLog := holdCall(t, r.sub, false, r.sub.readsLog(room))
	subscribed := make(chan error, 1)
	go func() { subscribed <- r.sub.Subscribe(r.ctx, room) }()
	floor.wait(t) // subscribed, where the log stands not yet read
	// Not logged: the pub/sub reader stalls in the handler holding no
	// room's gap state.
	if err := r.pub.Publish(r.ctx, r.topic, &hub.Event{Kind: hub.KindMessage, Message: "stall"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-r.ctx.Done():
		t.Fatal("the pub/sub reader was not given the message that stalls it")
	}
	r.appendTo(r.pub, room, "e1")
	r.appendTo(r.pub, room, "e2") // both on their way to sub
	floor.letGo()
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	r.appendTo(r.pub, room, "e3")
	r.appendTo(r.pub, room, "e4")
	r.sub.readBackDue.Store(true) // as if the last read-back had failed
	kick(r.sub.readBackNow)
	eventually(t, waitTimeout, "sub reads back or waits for pub/sub", func() bool {
		select {
		case <-readLog.held:
			return true
		default:
			return r.sub.pendingSyncs() > 0
		}
	})
	unstall <- struct{}{}
	readLog.letGo()
	r.expect("stall", "e1", "e2", "e3", "e4")
	r.appendTo(r.pub, room, "e5")
	r.expect("e5")
}

// A room subscribed while the pub/sub connection breaks and returns, its
// log's position read meanwhile, gets what was appended while the
// connection was away without waiting for its next event. The test holds
// the reply of that read until the read-back of the connection's return
// has read where the log stands too. (Without the mend the test shows the
// loss as long as that read-back, which then looks at the room at once,
// does so before the test lets the held reply go: in every run so far.)
func TestSubscribeAcrossAReconnectReadsBackWhatWasMissed(t *testing.T) {
	r := newCutRig(t, quiet, "room:first")
	const room = "room:floor"
	// Only room's position is read back: a read-back's read is then as
	// Subscribe's.
	if err := r.sub.Unsubscribe(r.ctx, r.topic); err != nil {
		t.Fatal(err)
	}
	floor := holdCall(t, r.sub, false, r.readsFloor(room))
	subscribed := make(chan error, 1)
	go func() { subscribed <- r.sub.Subscribe(r.ctx, room) }()
	floor.wait(t) // where the log stands is read, its reply on the way
	r.cutNoticed()
	r.appendTo(r.pub, room, "m1")
	r.login("on")
	eventually(t, waitTimeout, "sub reads back after its connection returns", func() bool { return floor.calls.Load() == 2 })
	floor.letGo()
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	r.expect("m1")
}

// A room whose node could not read where its log stood once subscribed
// (Redis refused the read: an ACL, here) still gets what is appended while
// the node's pub/sub connection is away, before its next message: read
// back from where the log stood before the node subscribed. The test
// holds that read until the ACL refuses it.
func TestSubscribeWithoutAFloorReadsBackWhatWasMissed(t *testing.T) {
	r := newCutRig(t, quiet, "room:first")
	const room = "room:nofloor"
	floor, subscribed := r.subscribeBeforeFloor(room)
	if err := r.rdb.Do(r.ctx, "ACL", "SETUSER", "sub", "-hmget").Err(); err != nil {
		t.Fatal(err)
	}
	floor.letGo()
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	r.login("on") // hmget allowed again
	r.cutNoticed()
	r.appendTo(r.pub, room, "m1")
	r.restore()
	r.appendTo(r.pub, room, "m2")
	r.expect("m1", "m2")
}

// A read-back that read where a room's log stood before the room's next
// event came live does not take that position for newer than the event:
// after the log was lost (it expired, or Redis restarted empty), the first
// event of the new log is handed over once. The test holds the reply of the
// read-back's read until that event has come.
func TestReadBackOlderThanALiveEventKeepsIt(t *testing.T) {
	r := newCutRig(t, quiet, "room:reborn", "b1", "b2")
	positions := holdCall(t, r.sub, false, r.sub.readsPosition(r.topic))
	if err := r.rdb.Del(r.ctx, r.sub.logKeys(r.topic)...).Err(); err != nil {
		t.Fatal(err)
	}
	readBack := func() {
		r.sub.readBackDue.Store(true) // as if the last one had failed
		kick(r.sub.readBackNow)
	}
	readBack()
	positions.wait(t)   // no log
	r.send(r.pub, "n1") // the new log's first
	r.expect("n1")
	positions.letGo()
	readBack() // once the first is done
	eventually(t, waitTimeout, "sub reads back again", func() bool { return positions.calls.Load() == 2 })
	r.send(r.pub, "n2")
	r.expect("n2")
}

// Messages others appended while a node's pub/sub connection was down are
// read back when it returns, also when the node's own append, sent while
// it was down, comes back (by its local path) while the read-back of the
// return is under way: that the room was handed a message since the
// read-back looked at it does not make it up to date. The test holds the
// reply to sub's append, then the read-back's read of where the log
// stands until the append has returned.
func TestMissedMessagesReadBackWhenOwnAppendCrossesTheReturn(t *testing.T) {
	r := newCutRig(t, quiet, "room:cross")
	r.send(r.pub, "m0") // the script loaded: sub's append is one call
	r.expect("m0")
	own := holdCall(t, r.sub, false, r.sub.appendsTo(r.topic))
	positions := holdCall(t, r.sub, false, r.sub.readsPositions(r.topic))
	r.cutNoticed()
	sent := r.sendAsync(r.sub, "m1")
	own.wait(t) // m1 appended; the reply on its way
	r.send(r.pub, "m2")
	r.restore()
	positions.wait(t) // the read-back has looked at the room
	own.letGo()
	if n := r.returned(sent); n != 1 {
		t.Errorf("%d messages handled when the append returned, want 1 (its own m1)", n)
	}
	positions.letGo()
	r.expect("m1", "m2") // m2 read back, with nothing appended since
}
