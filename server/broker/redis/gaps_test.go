package redis

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// Messages appended while a node's pub/sub connection is down reach its
// handler anyway, read back from the log: when the connection returns, or
// before the node's own append if it appends meanwhile (Append's local
// path); then the next ones, each once. This holds also for a node that has
// subscribed but not yet been given any of the room's messages: it knows
// where the log stood when it subscribed, and what was appended before that
// is not read back.
func TestMissedMessagesAreReadBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []string // appended before sub subscribes
		seen   bool     // sub is given m0 before its connection is cut
		local  bool     // sub appends m3 itself while cut off
	}{
		{"new log, connection back", nil, false, false},
		{"new log, own append", nil, false, true},
		{"log with history, connection back", []string{"b1", "b2"}, false, false},
		{"log with history, own append", []string{"b1", "b2"}, false, true},
		{"after one seen, connection back", nil, true, false},
		{"after one seen, own append", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCutRig(t, quiet, "room:gap", tc.before...)
			if tc.seen {
				r.send(r.pub, "m0")
				r.expect("m0")
			}
			r.cutNoticed()
			r.send(r.pub, "m1")
			r.send(r.pub, "m2")
			if tc.local {
				r.send(r.sub, "m3") // delivered by sub's local path, after m1 and m2
				r.expect("m1", "m2", "m3")
			}
			if n := r.subscribers(); n != 0 {
				t.Fatalf("%d subscribers while m1 to m3 were appended, want 0: nothing to read back", n)
			}
			r.restore()
			next := []string{"m4"}
			if !tc.local {
				r.expect("m1", "m2") // with nothing appended since
				r.send(r.pub, "m3")
				next = []string{"m3", "m4"}
			}
			r.send(r.pub, "m4")
			r.expect(next...) // and nothing twice
			if n := r.sub.Metrics().GapsFilled.Load(); n != 2 {
				t.Errorf("%d messages read back, want 2 (m1 and m2)", n)
			}
		})
	}
}

// A node whose pub/sub connection returns while it still takes Redis for
// unreachable (its prober has not yet had an answer) reads back what it
// missed as soon as Redis answers, without waiting for the next message.
func TestMissedMessagesAreReadBackWhenRedisAnswersAgain(t *testing.T) {
	r := newCutRig(t, quiet, "room:late")
	r.cutNoticed()
	r.send(r.pub, "m1")
	r.send(r.pub, "m2")
	r.sub.down.Store(true) // as if a call had timed out; the prober is not woken yet
	r.login("on")
	eventually(t, waitTimeout, "sub back on the channel", func() bool { return r.subscribers() == 1 && r.sub.up.Load() })
	kick(r.sub.probeNow)
	r.expect("m1", "m2")
}

// Events appended while a node subscribes reach its handler once each and
// in order, those appended after Subscribe returned all of them: knowing
// where the log stood drops none of those on their way, and reads none
// back that came live. One node appends without pause while the other
// subscribes and unsubscribes, round after round.
func TestEventsAroundASubscribeDeliveredOnce(t *testing.T) {
	srv := redistest.Start(t)
	bs := newCluster(t, srv, 2, steady)
	pub, sub := bs[0], bs[1]
	const topic = "room:busy"
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitTimeout)
	defer cancel()

	var mu sync.Mutex
	var got []uint64 // offsets handed to sub's handler this round
	sub.SetHandler(func(_ string, ev *hub.Event) {
		mu.Lock()
		got = append(got, ev.Offset)
		mu.Unlock()
	})
	var appended atomic.Uint64 // the latest offset pub has appended
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := pub.Append(ctx, topic, &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "m"},
				hub.AppendOptions{Log: hub.LogLimits{Size: 100}})
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			appended.Store(r.Offset)
		}
	}()
	defer wg.Wait()
	defer close(stop)

	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	for round := range 30 {
		if err := sub.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
		// Everything after where the log stands now must come.
		at, err := rdb.HGet(ctx, sub.logKeys(topic)[0], "o").Uint64()
		if err != nil {
			t.Fatal(err)
		}
		until := at + 5
		eventually(t, waitTimeout, "sub is given the events after it subscribed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) > 0 && got[len(got)-1] >= until
		})
		if err := sub.Unsubscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		offsets := slices.Clone(got)
		got = got[:0]
		mu.Unlock()
		for i := 1; i < len(offsets); i++ {
			if offsets[i] != offsets[i-1]+1 {
				t.Fatalf("round %d: offsets %v: want each once, in order, with none missing", round, offsets)
			}
		}
		if offsets[0] > at+1 {
			t.Fatalf("round %d: offsets %v: want every one after %d, where the log stood after Subscribe", round, offsets, at)
		}
	}
	if appended.Load() == 0 {
		t.Fatal("nothing appended")
	}
}

// An unlogged event (a user leaving, an unlogged message) that comes while
// a room's logged events wait behind a gap waits with them, in its place:
// the room's members on this node see a user's last message before they
// see the user leave, as the channel ordered them. The node's own Publish
// of one returns once it has been handed over, after them. The test holds
// the read-back of what was missed.
func TestUnloggedEventsKeepTheirPlaceBehindAGap(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, "room:order")
	logRead := holdCall(t, r.sub, false, r.sub.readsLog(r.topic))
	r.cutNoticed()
	r.send(r.pub, "missed")
	r.restore()
	logRead.wait(t) // "missed" being read back; its position held
	r.send(r.pub, "last words")
	if err := r.pub.Publish(r.ctx, r.topic, &hub.Event{Kind: hub.KindMessage, Message: "left"}); err != nil {
		t.Fatal(err)
	}
	published := r.publishAsync("own")
	eventually(t, waitTimeout, "every event waits behind the missed one (or, were it not held, goes)", func() bool {
		return r.sub.held(r.topic) == 4 || len(r.got) > 0
	})
	logRead.letGo()
	if n := r.returned(published); n != 4 {
		t.Errorf("%d events handled when sub's Publish returned, want 4 (its own last)", n)
	}
	r.expect("missed", "last words", "left", "own")
	r.send(r.pub, "after")
	r.expect("after")
}

// A user's leave published while the node's pub/sub connection is down
// (delivered on this node only) keeps its place behind the user's last
// message, which waits behind one the node missed and cannot yet read
// back: the room's members on this node see the last message before the
// leave. Publish returns once the leave has been handed over.
func TestLocalPublishKeepsItsPlaceBehindAGap(t *testing.T) {
	r, sent := lastWordsBehindAGap(t, "room:leave")
	published := r.publishAsync("left")
	eventually(t, waitTimeout, "the leave waits behind the last words (or, were it not held, goes)", func() bool {
		return r.sub.held(r.topic) == 2 || len(r.got) > 0
	})
	r.readLogs(true)
	if n := r.returned(sent); n < 2 {
		t.Errorf("%d messages handled when the append returned, want 2 (missed, then its own)", n)
	}
	if n := r.returned(published); n != 3 {
		t.Errorf("%d events handled when sub's Publish returned, want 3 (its own last)", n)
	}
	r.expect("missed", "last words", "left")
}

// lastWordsBehindAGap starts a cutRig on topic whose sub, its pub/sub
// connection down, missed a message it cannot read back, and appends "last
// words" behind it (sendAsync), by its local path; the wait for the gap is
// SyncTimeout, a minute. It returns once the read of the missed one failed.
func lastWordsBehindAGap(t *testing.T, topic string) (*cutRig, <-chan int) {
	t.Helper()
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, topic)
	r.cutNoticed()
	r.send(r.pub, "missed")
	r.readLogs(false)
	sent := r.sendAsync(r.sub, "last words")
	eventually(t, waitTimeout, "sub fails to read back the missed one", func() bool { return r.sub.readFailed(r.topic) })
	return r, sent
}

// publishAsync publishes an unlogged message with text through sub, on
// another goroutine; the channel it returns gives, once Publish has
// returned, how many messages sub's handler had been given by then that
// the test has not taken (r.got).
func (r *cutRig) publishAsync(text string) <-chan int {
	handled := make(chan int, 1)
	go func() {
		if err := r.sub.Publish(r.ctx, r.topic, &hub.Event{Kind: hub.KindMessage, Message: text}); err != nil {
			r.t.Errorf("sub publishes %s: %v", text, err)
		}
		handled <- len(r.got)
	}()
	return handled
}

// While Redis is unreachable (paused), a message published on a node whose
// room holds only a read-back's mark (missed messages it could not read
// back yet, nothing live waiting) reaches the node's own handler at once:
// it is not held behind a gap no read can fill then, nor is the gap given
// up for it.
func TestLocalPublishWhileRedisIsAwayIsNotHeldBehindAMark(t *testing.T) {
	r := newCutRigWith(t, quiet, func(cfg *Config) { cfg.SyncTimeout = time.Minute }, "room:away")
	r.cutNoticed()
	r.send(r.pub, "missed")
	r.readLogs(false)
	r.restore()
	eventually(t, waitTimeout, "sub fails to read back the missed one", func() bool {
		return r.sub.readFailed(r.topic) && r.sub.held(r.topic) == 1
	})
	r.srv.Pause(t)
	published := r.publishAsync("left")
	select {
	case m := <-r.got:
		if m != "left" {
			t.Fatalf("got %q, want %q", m, "left")
		}
	case <-time.After(waitTimeout):
		t.Fatal("message published while redis is paused not handed over on this node")
	}
	<-published
	if !r.sub.down.Load() {
		t.Error("sub does not take the paused redis for unreachable")
	}
	if n := r.sub.metrics.GapsLost.Load(); n != 0 {
		t.Errorf("%d missed messages given up, want 0: they are read back once redis answers", n)
	}
}

// Close releases the calls waiting behind a gap (the node's own append,
// held behind a missed message it cannot read back), and a Publish after
// Close (a session's last event, racing the node's shutdown) waits for
// nothing: no reader hands over, nor gives up, what a gap holds then.
func TestCloseReleasesCallsWaitingBehindAGap(t *testing.T) {
	r, sent := lastWordsBehindAGap(t, "room:closing")
	if err := r.sub.Close(); err != nil {
		t.Fatal(err)
	}
	r.returned(sent)
	r.returned(r.publishAsync("left"))
}
