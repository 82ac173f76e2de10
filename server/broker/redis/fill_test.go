package redis

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// countCalls counts b's calls that match picks, holding none.
func countCalls(t *testing.T, b *Broker, match func(cmds []goredis.Cmder) bool) *heldCall {
	h := holdCall(t, b, false, match)
	h.armed.Store(false)
	return h
}

// readsPositions picks the calls that read where topic's log stands,
// alone or with other topics' (a read-back's pipeline).
func (b *Broker) readsPositions(topic string) func(cmds []goredis.Cmder) bool {
	key := b.logKeys(topic)[0]
	return func(cmds []goredis.Cmder) bool {
		for _, c := range cmds {
			if c.Name() == "hmget" && slices.Contains(c.Args(), any(key)) {
				return true
			}
		}
		return false
	}
}

// readLogs sets whether Redis lets sub read a log: without XRANGE, which
// ACLs check in scripts too, ReadLog's script fails with an error from
// Redis, while appends (XADD) and every other call of sub's work.
func (r *cutRig) readLogs(allowed bool) {
	r.t.Helper()
	rule := "-xrange"
	if allowed {
		rule = "+xrange"
	}
	r.logsRefused = !allowed // kept by login
	if err := r.rdb.Do(r.ctx, "ACL", "SETUSER", "sub", rule).Err(); err != nil {
		r.t.Fatal(err)
	}
}

// missTwo: sub is given m0, then misses m1 and m2, its pub/sub connection
// cut.
func (r *cutRig) missTwo() {
	r.t.Helper()
	r.send(r.pub, "m0")
	r.expect("m0")
	r.cutNoticed()
	r.send(r.pub, "m1")
	r.send(r.pub, "m2")
}

// The pub/sub reader never waits on Redis for a room behind a gap: while a
// room's missed messages are being read back (slowly, here: the test holds
// the read), the room's next live event waits behind them, and the other
// rooms' events go on coming. Either the read-back of the connection's
// return reads them, or the live event of the room found the gap first
// (the test then holds that read-back's read of positions too).
func TestRoomBehindAGapDoesNotHoldUpThePubSubReader(t *testing.T) {
	for _, tc := range []struct {
		name         string
		holdReadBack bool // hold the read-back's read of where the logs stand
	}{
		{"read back when the connection returns", false},
		{"gap found by the room's next event", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCutRig(t, quiet, "room:behind")
			const other = "room:other"
			if err := r.sub.Subscribe(r.ctx, other); err != nil {
				t.Fatal(err)
			}
			var positions *heldCall
			if tc.holdReadBack {
				positions = holdCall(t, r.sub, false, r.sub.readsPositions(r.topic))
			}
			logRead := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
			r.cutNoticed()
			r.send(r.pub, "missed")
			r.restore()
			if tc.holdReadBack {
				positions.wait(t)
			} else {
				logRead.wait(t)
			}
			r.send(r.pub, "next")                 // behind "missed", on the same connection as "elsewhere"
			r.appendTo(r.pub, other, "elsewhere") // after "next"
			r.expect("elsewhere")
			if tc.holdReadBack {
				positions.letGo()
			}
			logRead.letGo()
			r.expect("missed", "next")
			r.send(r.pub, "after")
			r.expect("after")
		})
	}
}

// A read-back that Redis fails (here an ACL refuses the read: an error
// from Redis) is tried again, and the events behind it wait for it: the
// room's members on this node get every message, in order, once Redis
// lets the log be read. Either the node's own append, made while its
// pub/sub connection was down, comes after the gap, or a live event does
// once the connection is back.
func TestFailedReadBackIsTriedAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local bool // sub appends m3 itself while cut off
	}{
		{"own append while cut off", true},
		{"live event after the connection returns", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// SyncTimeout, which bounds the wait of events behind a gap,
			// long enough for the slowest machine.
			r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, "room:refused")
			reads := countCalls(t, r.sub, r.sub.readsLog(r.topic))
			r.missTwo()
			r.readLogs(false)
			if tc.local {
				r.send(r.sub, "m3") // its read-back of m1 and m2 refused
			} else {
				r.restore()
				eventually(t, waitTimeout, "sub tries to read back m1 and m2", func() bool { return reads.calls.Load() > 0 })
				tried := reads.calls.Load()
				r.send(r.pub, "m3")
				// Once m3 has come, its read-back of m1 and m2 refused
				// (or, read back on a timer, a next one).
				eventually(t, waitTimeout, "sub tries again", func() bool { return reads.calls.Load() > tried })
			}
			r.readLogs(true)
			r.expect("m1", "m2", "m3")
			if tc.local {
				r.restore()
			}
			r.send(r.pub, "m4")
			r.expect("m4")
		})
	}
}

// A room whose node's pub/sub connection is lost after the subscription
// took effect and before the node read where the room's log stood gets
// what was appended in between, at or below that position, once the
// connection is back. The test holds that read until the connection has
// been cut and a message appended.
func TestConnectionLostWhileSubscribingReadsBackWhatWasMissed(t *testing.T) {
	r := newCutRig(t, quiet, "room:first")
	const room = "room:window"
	floor := holdCall(t, r.sub, true, r.readsFloor(room))
	subscribed := make(chan error, 1)
	go func() { subscribed <- r.sub.Subscribe(r.ctx, room) }()
	floor.wait(t) // subscribed, where the log stands not yet read
	r.cutNoticed()
	r.appendTo(r.pub, room, "e1") // lost on the way, and at or below the floor
	r.restore()
	floor.letGo()
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	r.appendTo(r.pub, room, "e2")
	r.expect("e1", "e2")
}

// A read-back that Redis leaves unanswered (it is paused: SIGSTOP) is
// tried again once Redis answers, and the room's next event waits behind
// it. The test holds the read until Redis is paused.
func TestReadBackTimedOutIsTriedAgain(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, "room:paused")
	logRead := holdCall(t, r.sub, true, r.sub.readsLog(r.topic))
	r.missTwo()
	r.restore()
	logRead.wait(t)
	r.send(r.pub, "m3")
	r.srv.Pause(t)
	logRead.letGo()
	eventually(t, waitTimeout, "sub finds Redis unanswering", func() bool { return r.sub.down.Load() })
	r.srv.Resume(t)
	r.expect("m1", "m2", "m3")
	r.send(r.pub, "m4")
	r.expect("m4")
}

// A room's live events wait behind missed ones that cannot be read back
// for SyncTimeout at most: then those are given up, counted, and the
// room's members on this node get the next ones, in order.
func TestReadBackGivenUpAfterSyncTimeout(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = 200 * time.Millisecond }, "room:lost")
	r.missTwo()
	r.readLogs(false)
	r.restore()
	r.send(r.pub, "m3")
	r.expect("m3") // m1 and m2 given up
	if n := r.sub.Metrics().GapsLost.Load(); n != 2 {
		t.Errorf("%d messages given up, want 2 (m1 and m2)", n)
	}
	r.readLogs(true)
	r.send(r.pub, "m4")
	r.expect("m4")
}

// held is how many events and positions wait behind a gap in topic.
func (b *Broker) held(topic string) int {
	st := b.state(topic)
	if st == nil {
		return 0
	}
	st.gap.mu.Lock()
	defer st.gap.mu.Unlock()
	return len(st.gap.held)
}

// A node's own append that comes back behind a gap is handed to its
// handler, after what was missed, before the append returns, as every
// append of a subscribed room is: a session that sends, then leaves, has
// seen its own message.
func TestOwnAppendBehindAGapIsHandledBeforeItReturns(t *testing.T) {
	r := newCutRig(t, quiet, "room:own")
	logRead := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
	r.cutNoticed()
	r.send(r.pub, "m1")
	r.restore()
	logRead.wait(t) // m1 being read back
	handled := make(chan int, 1)
	go func() {
		ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "m2"}
		if _, err := r.sub.Append(r.ctx, r.topic, ev, hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); err != nil {
			t.Errorf("sub appends m2: %v", err)
		}
		handled <- len(r.got) // messages handled when the append returned
	}()
	eventually(t, waitTimeout, "m2 waits behind m1", func() bool { return r.sub.held(r.topic) == 2 })
	logRead.letGo()
	select {
	case n := <-handled:
		if n != 2 {
			t.Errorf("%d messages handled when the append returned, want 2 (m1, then its own m2)", n)
		}
	case <-r.ctx.Done():
		t.Fatal("the append did not return")
	}
	r.expect("m1", "m2")
}

// The events waiting behind a gap are bounded: past maxHeld the gap is
// given up, counted, and they are handed over, in order; the read-back
// still under way hands over nothing when it ends. The test holds that
// read-back's read of the log.
func TestEventsBehindAGapAreBounded(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, "room:crowd")
	var mu sync.Mutex
	var got []string
	r.sub.SetHandler(func(_ string, ev *hub.Event) {
		mu.Lock()
		got = append(got, ev.Message)
		mu.Unlock()
	})
	logRead := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
	r.cutNoticed()
	r.send(r.pub, "missed")
	r.restore()
	logRead.wait(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*waitTimeout)
	defer cancel()
	want := make([]string, maxHeld+1)
	for i := range want {
		want[i] = fmt.Sprint("live", i)
		ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: want[i]}
		if _, err := r.pub.Append(ctx, r.topic, ev, hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	handed := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	eventually(t, waitTimeout, "the live events are handed over", func() bool { return len(handed()) >= len(want) })
	logRead.letGo()
	if _, err := r.pub.Append(ctx, r.topic, &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "after"},
		hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "the next one is handed over", func() bool { return len(handed()) > len(want) })
	if h := handed(); !slices.Equal(h, append(want, "after")) {
		t.Errorf("handed over %d events, %v first and %v last; want the %d live ones, in order, then after",
			len(h), h[:min(3, len(h))], h[max(0, len(h)-3):], len(want))
	}
	if n := r.sub.Metrics().GapsLost.Load(); n != 1 {
		t.Errorf("%d messages given up, want 1 (missed)", n)
	}
}
