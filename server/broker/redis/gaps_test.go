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
	published := make(chan int, 1)
	go func() {
		if err := r.sub.Publish(r.ctx, r.topic, &hub.Event{Kind: hub.KindMessage, Message: "own"}); err != nil {
			t.Errorf("sub publishes: %v", err)
		}
		published <- len(r.got) // events handled when Publish returned
	}()
	eventually(t, waitTimeout, "every event waits behind the missed one (or, were it not held, goes)", func() bool {
		return r.sub.held(r.topic) == 4 || len(r.got) > 0
	})
	logRead.letGo()
	select {
	case n := <-published:
		if n != 4 {
			t.Errorf("%d events handled when sub's Publish returned, want 4 (its own last)", n)
		}
	case <-r.ctx.Done():
		t.Fatal("sub's Publish did not return")
	}
	r.expect("missed", "last words", "left", "own")
	r.send(r.pub, "after")
	r.expect("after")
}
