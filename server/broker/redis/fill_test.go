package redis

import (
	"github.com/tertulia/tertulia/server/logs/logstest"

	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
			var sent <-chan int
			if tc.local {
				sent = r.sendAsync(r.sub, "m3") // its read-back of m1 and m2 refused
				eventually(t, waitTimeout, "sub fails to read back m1 and m2", func() bool { return r.sub.readFailed(r.topic) })
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
				r.returned(sent)
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
	floor, subscribed := r.subscribeBeforeFloor(room)
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

// gapDue reports whether topic is due for a read-back of a gap (fillDue).
func (b *Broker) gapDue(topic string) bool {
	b.gapsMu.Lock()
	defer b.gapsMu.Unlock()
	return b.gapsDue[topic] != nil
}

// readFailed reports whether the last read of topic's gap failed.
func (b *Broker) readFailed(topic string) bool {
	st := b.state(topic)
	if st == nil {
		return false
	}
	st.gap.mu.Lock()
	defer st.gap.mu.Unlock()
	return st.gap.failed
}

// sendAsync appends a message with text to topic's log through from, on
// another goroutine; the channel it returns gives, once the append has
// returned, how many messages sub's handler had been given by then that
// the test has not taken (r.got).
func (r *cutRig) sendAsync(from *Broker, text string) <-chan int {
	handled := make(chan int, 1)
	go func() {
		ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: text}
		if _, err := from.Append(r.ctx, r.topic, ev, hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); err != nil {
			r.t.Errorf("%s appends %s: %v", from.NodeID(), text, err)
		}
		handled <- len(r.got)
	}()
	return handled
}

// returned waits for an append of sendAsync's (or a publish of
// publishAsync's) to return, and gives what sent gave.
func (r *cutRig) returned(sent <-chan int) int {
	r.t.Helper()
	select {
	case n := <-sent:
		return n
	case <-r.ctx.Done():
		r.t.Fatal("the call did not return")
		return 0
	}
}

// A node's own append that comes behind a gap is handed to its handler,
// after what was missed, before the append returns, as every append of a
// subscribed room is: a session that sends, then leaves, has seen its own
// message. So whether the append comes back through pub/sub or, the
// node's pub/sub connection down, goes by its local path; and whether the
// read-back of what was missed is under way on the read-back goroutine
// (the test holds its read) or fails, tried again later.
func TestOwnAppendBehindAGapIsHandledBeforeItReturns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cut     bool // sub's pub/sub connection is down when it appends
		refused bool // Redis refuses sub's read of the log, rather than being slow to answer it
	}{
		{"connection up, read-back under way", false, false},
		{"cut off, read-back under way", true, false},
		{"cut off, read-back refused", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, "room:own")
			var logRead *heldCall
			if !tc.refused {
				logRead = holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
			}
			r.cutNoticed()
			r.send(r.pub, "m1")
			behind := 1 // what waits behind m1: m2, and the read-back's position
			if tc.refused {
				r.readLogs(false)
			} else {
				r.restore()
				logRead.wait(t) // m1 being read back
				behind++
				if tc.cut {
					r.cutNoticed()
				}
			}
			sent := r.sendAsync(r.sub, "m2")
			eventually(t, waitTimeout, "m2 waits behind m1", func() bool { return r.sub.held(r.topic) == behind })
			if tc.refused {
				eventually(t, waitTimeout, "sub fails to read back m1", func() bool { return r.sub.readFailed(r.topic) })
				r.readLogs(true)
			} else {
				logRead.letGo()
			}
			if n := r.returned(sent); n != 2 {
				t.Errorf("%d messages handled when the append returned, want 2 (m1, then its own m2)", n)
			}
			r.expect("m1", "m2")
		})
	}
}

// The events waiting behind a gap are bounded: past maxHeld the gap is
// given up, counted, and they are handed over, in order; the room is then
// no longer due for a read-back (its next gap is asked for at once), and
// the read-back still under way hands over nothing when it ends. The test
// holds that read-back's read of the log.
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
	// The room no longer due: its next gap is asked for at once, not once
	// the read under way (held) ends.
	eventually(t, waitTimeout, "the gap given up, nothing held, is no longer due", func() bool { return !r.sub.gapDue(r.topic) })
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

// While Redis refuses to give a room's missed messages, the read is tried
// again on the read-back's backoff, not once for each live event that
// comes behind them: a busy room costs Redis no more reads then than a
// quiet one. (The backoff is a minute here: no retry on a timer comes
// within the test; the test then asks for one itself.)
func TestFailedReadIsNotTriedForEachEvent(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) {
		cfg.SyncTimeout, cfg.ProbeInterval = time.Minute, time.Minute
	}, "room:busy")
	reads := countCalls(t, r.sub, r.sub.readsLog(r.topic))
	r.missTwo()
	r.readLogs(false)
	r.restore()
	eventually(t, waitTimeout, "sub fails to read back m1 and m2", func() bool { return r.sub.readFailed(r.topic) })
	tried := reads.calls.Load()
	const live = 12
	want := []string{"m1", "m2"}
	for i := range live {
		text := fmt.Sprint("live", i)
		want = append(want, text)
		r.send(r.pub, text)
		// The read-back's position, then the live ones.
		eventually(t, waitTimeout, "the live event waits behind m1 and m2", func() bool { return r.sub.held(r.topic) == 2+i })
	}
	// One more may have been asked for before the first failed.
	if n := reads.calls.Load() - tried; n > 1 {
		t.Errorf("%d more reads of the log refused while %d live events came, want at most 1", n, live)
	}
	r.readLogs(true)
	kick(r.sub.readBackNow) // as the backoff's timer would, in a minute
	r.expect(want...)
}

// Missed messages the log no longer holds (trimmed to its size while the
// node's pub/sub connection was away) cannot be read back: they are
// counted as lost (GapsLost, which an alert watches), and those it still
// holds are handed over, in order.
func TestMissedMessagesGoneFromTheLogAreCounted(t *testing.T) {
	r := newCutRig(t, quiet, "room:trimmed")
	r.send(r.pub, "m0")
	r.expect("m0")
	r.cutNoticed()
	for _, m := range []string{"m1", "m2", "m3", "m4", "m5"} {
		r.send(r.pub, m)
	}
	if err := r.rdb.XTrimMaxLen(r.ctx, r.sub.logKeys(r.topic)[1], 2).Err(); err != nil {
		t.Fatal(err)
	}
	r.restore()
	r.expect("m4", "m5")
	r.send(r.pub, "m6")
	r.expect("m6")
	m := r.sub.Metrics()
	if filled, lost := m.GapsFilled.Load(), m.GapsLost.Load(); filled != 2 || lost != 3 {
		t.Errorf("%d messages read back and %d lost, want 2 (m4, m5) and 3 (m1 to m3)", filled, lost)
	}
}

// A room's live events wait behind missed ones whose read Redis leaves
// unanswered for about SyncTimeout, not until the read ends: an event that
// comes once the first has waited longer gives the gap up, and they are
// handed over, in order. The test holds the read's reply until it ends.
func TestHangingReadBackIsGivenUpAfterSyncTimeout(t *testing.T) {
	const syncTimeout = 200 * time.Millisecond
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = syncTimeout }, "room:hung")
	logRead := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
	r.missTwo()
	r.restore()
	logRead.wait(t)
	r.send(r.pub, "m3")
	eventually(t, waitTimeout, "m3 waits behind m1 and m2", func() bool { return r.sub.held(r.topic) == 2 })
	time.Sleep(syncTimeout + 50*time.Millisecond) // m3 has waited SyncTimeout; no sync
	r.send(r.pub, "m4")
	r.expect("m3", "m4")
	if n := r.sub.Metrics().GapsLost.Load(); n != 2 {
		t.Errorf("%d messages given up, want 2 (m1 and m2)", n)
	}
	// The room no longer due: its next gap is asked for at once, not once
	// the read under way (held) ends.
	eventually(t, waitTimeout, "the gap given up, nothing held, is no longer due", func() bool { return !r.sub.gapDue(r.topic) })
	logRead.letGo()
	r.send(r.pub, "m5")
	r.expect("m5")
}

// A node's own append held behind a gap that Redis does not let it read,
// in a room where nothing more comes, returns once the gap has been given
// up, SyncTimeout after the append was held, and its message handed over:
// not once its own wait has run out, warning that its event did not come
// back. (The read is tried again 2 s after it failed: were the gap looked
// at only then, the append's wait would run out first.)
func TestOwnAppendBehindAGapIsGivenUpOnTimeInAQuietRoom(t *testing.T) {
	var logs logstest.Buffer
	r := newCutRigWith(t, quiet, func(cfg *Config) {
		cfg.SyncTimeout, cfg.ProbeInterval = 250*time.Millisecond, 2*time.Second
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}, "room:quiet")
	r.cutNoticed()
	r.send(r.pub, "m1")
	r.readLogs(false)
	if n := r.returned(r.sendAsync(r.sub, "m2")); n != 1 {
		t.Errorf("%d messages handled when the append returned, want 1 (its own m2, m1 given up)", n)
	}
	r.expect("m2")
	if n := r.sub.Metrics().GapsLost.Load(); n != 1 {
		t.Errorf("%d messages given up, want 1 (m1)", n)
	}
	if l := logs.String(); strings.Contains(l, "own event did not come back") {
		t.Errorf("the append's wait ran out before the gap was given up:\n%s", l)
	}
}

// A live event that comes to wait behind a gap whose read failed, and
// whose retry is timed far off, has the gap read at once: it does not
// wait for the backoff, and its give-up is timed from its own wait.
func TestFirstEventBehindAFailedReadHasItReadAtOnce(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) {
		cfg.SyncTimeout, cfg.ProbeInterval = time.Minute, time.Minute
	}, "room:waiting")
	r.missTwo()
	r.readLogs(false)
	r.restore()
	eventually(t, waitTimeout, "sub fails to read back m1 and m2", func() bool { return r.sub.readFailed(r.topic) })
	r.readLogs(true) // Redis gives the log again; the retry is a minute off
	r.send(r.pub, "live")
	r.expect("m1", "m2", "live")
}
