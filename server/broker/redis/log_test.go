package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// A log left without appends for its TTL expires in Redis; the next append
// starts it again at offset 1 in a new epoch, so that no client mistakes the
// new offsets for the old ones.
func TestExpiredLogStartsANewEpoch(t *testing.T) {
	srv := redistest.Start(t)
	b := newCluster(t, srv, 1, steady)[0]
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// A TTL that three appends in a row do not outlast on a busy machine
	// (at 50ms one full test run saw the log expire between two of them).
	opt := hub.AppendOptions{Log: hub.LogLimits{Size: 10, TTL: 500 * time.Millisecond}}
	msg := func() *hub.Event { return &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "m"} }
	var first hub.Receipt
	for range 3 {
		r, err := b.Append(ctx, "room:brief", msg(), opt)
		if err != nil {
			t.Fatal(err)
		}
		first = r
	}
	if first.Offset != 3 {
		t.Fatalf("third append at offset %d, want 3", first.Offset)
	}
	for {
		page, err := b.ReadLog(ctx, "room:brief", hub.LogQuery{Limits: opt.Log})
		if err != nil {
			t.Fatal(err)
		}
		if page.Offset == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("log still at offset %d after its TTL", page.Offset)
		case <-time.After(10 * time.Millisecond):
		}
	}
	r, err := b.Append(ctx, "room:brief", msg(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 1 || r.Epoch == first.Epoch || r.Epoch == "" {
		t.Errorf("append after expiry: %+v, want offset 1 in a new epoch (was %q)", r, first.Epoch)
	}
}

// Each node counts the messages it added to the logs (a duplicate or an
// unlogged publish not), so that the nodes' counts add up to what Redis
// holds; an append Redis cannot take is counted as an error.
func TestHistoryAppendsAreCounted(t *testing.T) {
	srv := redistest.Start(t)
	bs := newCluster(t, srv, 2, steady)
	a, b := bs[0], bs[1]
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	logged := hub.AppendOptions{Log: hub.LogLimits{Size: 100}}
	deduped := hub.AppendOptions{Log: logged.Log, DedupKey: "once", DedupTTL: time.Minute}
	for _, step := range []struct {
		b   *Broker
		opt hub.AppendOptions
	}{
		{a, logged}, {a, logged}, {a, deduped}, {a, deduped}, // the second deduped: a duplicate
		{a, hub.AppendOptions{}}, // not logged
		{b, logged}, {b, logged}, {b, logged},
	} {
		if _, err := step.b.Append(ctx, "room:count", &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "m"}, step.opt); err != nil {
			t.Fatal(err)
		}
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	held, err := rdb.XLen(ctx, a.prefix+"log:room:count").Result()
	if err != nil {
		t.Fatal(err)
	}
	gotA, gotB := a.Metrics().HistoryAppends.Load(), b.Metrics().HistoryAppends.Load()
	if gotA != 3 || gotB != 3 || gotA+gotB != held {
		t.Errorf("appends counted: a %d, b %d; Redis holds %d; want 3, 3 and 6", gotA, gotB, held)
	}
	if got := a.Metrics().HistoryAppendErrors.Load(); got != 0 {
		t.Errorf("append errors with Redis up: %d, want 0", got)
	}

	srv.Stop(t)
	eventually(t, waitTimeout, "a notices", func() bool { return !a.up.Load() })
	if _, err := a.Append(ctx, "room:count", &hub.Event{Kind: hub.KindMessage, Message: "lost"}, logged); err == nil {
		t.Fatal("append with Redis stopped: got no error")
	}
	if got := a.Metrics().HistoryAppendErrors.Load(); got != 1 {
		t.Errorf("append errors after a failed append: %d, want 1", got)
	}
	if got := a.Metrics().HistoryAppends.Load(); got != 3 {
		t.Errorf("appends after a failed append: %d, want still 3", got)
	}
}

// quiet is for a node whose only calls must be the test's: no heartbeat
// runs within a test.
var quiet = timings{time.Minute, 2 * time.Minute}

// An event this node appends as its pub/sub connection returns may come
// both ways, through Redis and by Append's local path: it reaches the
// handler once. The window (the connection is subscribed again, the receive
// loop has not read from it yet) is too narrow to hit from outside: the test
// holds it open by clearing the flag the loop sets on its next read.
func TestAppendComingBothWaysIsDeliveredOnce(t *testing.T) {
	r := newCutRig(t, quiet, "room:twice") // quiet: no idle PING answered sets the flag again
	r.sub.up.Store(false)
	r.send(r.sub, "m1")
	r.send(r.pub, "m2") // after m1's copy on the channel
	r.expect("m1", "m2")
}

// cutRig is two nodes on one Redis, pub and sub, sub's handler subscribed to
// topic (after pub appended the messages before, if any), where the test can hold sub's pub/sub connection down while its
// other calls work.
//
// sub logs in to Redis as a user of its own, turned off while its pub/sub
// connection is cut: connections logged in before go on, but the pub/sub
// connection cannot come back until the test turns the user on, however
// slow the test runs. (Cut alone, it comes back within 50 ms, and a test
// descheduled that long would see what was published meanwhile live.) A
// call of sub's that needs a new connection fails meanwhile: a quiet sub
// makes no call of its own, and the test's go one at a time over the one
// its pool logged in before.
type cutRig struct {
	t        *testing.T
	ctx      context.Context
	srv      *redistest.Server
	rdb      *goredis.Client // the test's own, as the default user
	pub, sub *Broker
	topic    string
	got      chan string // the messages sub's handler was given
	// logsRefused: sub may not read a log (fill_test.go's readLogs).
	logsRefused bool
}

func newCutRig(t *testing.T, subTimings timings, topic string, before ...string) *cutRig {
	t.Helper()
	return newCutRigWith(t, subTimings, func(*Config) {}, topic, before...)
}

// newCutRigWith is newCutRig, sub's config changed by edit.
func newCutRigWith(t *testing.T, subTimings timings, edit func(*Config), topic string, before ...string) *cutRig {
	t.Helper()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	r := &cutRig{t: t, ctx: ctx, srv: srv, rdb: goredis.NewClient(&goredis.Options{Addr: srv.Addr}), topic: topic,
		got: make(chan string, 16)}
	t.Cleanup(func() { r.rdb.Close() })
	r.login("on")
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	r.pub = newBroker(t, srv, prefix, steady)
	r.sub = newBroker(t, srv, prefix, subTimings, func(cfg *Config) {
		cfg.Options.Username, cfg.Options.Password = "sub", "sub-secret"
		edit(cfg)
	})
	r.sub.SetHandler(func(_ string, ev *hub.Event) { r.got <- ev.Message })
	for _, text := range before {
		r.send(r.pub, text)
	}
	if err := r.sub.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *cutRig) login(state string) {
	r.t.Helper()
	rules := []any{"ACL", "SETUSER", "sub", state, ">sub-secret", "~*", "&*", "+@all"}
	if r.logsRefused {
		rules = append(rules, "-xrange")
	}
	if err := r.rdb.Do(r.ctx, rules...).Err(); err != nil {
		r.t.Fatal(err)
	}
}

// cut cuts sub's pub/sub connection and keeps it from coming back.
func (r *cutRig) cut() {
	r.t.Helper()
	r.login("off")
	if n, err := r.rdb.Do(r.ctx, "CLIENT", "KILL", "USER", "sub", "TYPE", "pubsub").Int(); err != nil || n != 1 {
		r.t.Fatalf("cutting sub's pub/sub connection: %d cut, %v; want 1", n, err)
	}
}

// cutNoticed cuts sub's pub/sub connection and waits until sub notices.
func (r *cutRig) cutNoticed() {
	r.t.Helper()
	r.cut()
	eventually(r.t, waitTimeout, "sub notices its pub/sub connection is down", func() bool { return !r.sub.up.Load() })
}

// restore lets sub's pub/sub connection come back, and waits until it has.
func (r *cutRig) restore() {
	r.t.Helper()
	r.login("on")
	eventually(r.t, waitTimeout, "sub back on the channel", func() bool { return r.subscribers() == 1 && !r.sub.down.Load() })
}

// send appends a message with text to topic's log through from.
func (r *cutRig) send(from *Broker, text string) {
	r.t.Helper()
	ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: text}
	if _, err := from.Append(r.ctx, r.topic, ev, hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); err != nil {
		r.t.Fatalf("%s appends %s: %v", from.NodeID(), text, err)
	}
}

// subscribers is how many connections Redis has subscribed to topic.
func (r *cutRig) subscribers() int64 {
	r.t.Helper()
	ch := r.sub.channel(r.topic)
	n, err := r.rdb.PubSubNumSub(r.ctx, ch).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return n[ch]
}

// expect checks that sub's handler is given the messages want next, in order.
func (r *cutRig) expect(want ...string) {
	r.t.Helper()
	for _, w := range want {
		select {
		case m := <-r.got:
			if m != w {
				r.t.Fatalf("got %q, want %q: every message once, in order", m, w)
			}
		case <-r.ctx.Done():
			r.t.Fatalf("no message; want %q", w)
		}
	}
}
