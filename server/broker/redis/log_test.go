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
	opt := hub.AppendOptions{Log: hub.LogLimits{Size: 10, TTL: 50 * time.Millisecond}}
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

// Messages published while a node's pub/sub connection is broken reach its
// handler anyway, read back from the log, before the first one after.
//
// The node logs in to Redis as a user of its own, turned off while its
// pub/sub connection is cut: connections logged in before go on, but the
// pub/sub connection cannot come back before the messages are published,
// however slow this test runs. (Cut alone, it comes back within 50 ms, and
// a test descheduled that long would see them live, no gap to fill.)
func TestMissedMessagesAreReadBack(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	login := func(state string) {
		t.Helper()
		if err := rdb.Do(ctx, "ACL", "SETUSER", "sub", state, ">sub-secret", "~*", "&*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
	}
	login("on")
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	pub := newBroker(t, srv, prefix, steady)
	sub := newBroker(t, srv, prefix, steady, func(cfg *Config) {
		cfg.Options.Username, cfg.Options.Password = "sub", "sub-secret"
	})
	got := make(chan string, 16)
	sub.SetHandler(func(_ string, ev *hub.Event) { got <- ev.Message })
	if err := sub.Subscribe(ctx, "room:gap"); err != nil {
		t.Fatal(err)
	}
	opt := hub.AppendOptions{Log: hub.LogLimits{Size: 10}}
	send := func(text string) {
		t.Helper()
		if _, err := pub.Append(ctx, "room:gap", &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: text}, opt); err != nil {
			t.Fatal(err)
		}
	}
	subscribers := func() int64 {
		t.Helper()
		n, err := rdb.PubSubNumSub(ctx, sub.channel("room:gap")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[sub.channel("room:gap")]
	}
	send("m1")
	next := func() string {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-ctx.Done():
			t.Fatal("no message")
			return ""
		}
	}
	if m := next(); m != "m1" {
		t.Fatalf("got %q, want m1", m)
	}

	login("off")
	if n, err := rdb.Do(ctx, "CLIENT", "KILL", "USER", "sub", "TYPE", "pubsub").Int(); err != nil || n != 1 {
		t.Fatalf("cutting sub's pub/sub connection: %d cut, %v; want 1", n, err)
	}
	send("m2")
	send("m3")
	if n := subscribers(); n != 0 {
		t.Fatalf("%d subscribers while m2 and m3 were published, want 0: nothing to read back", n)
	}
	login("on")
	eventually(t, waitTimeout, "sub back on the channel", func() bool { return subscribers() == 1 && !sub.down.Load() })
	send("m4")
	for _, want := range []string{"m2", "m3", "m4"} {
		if m := next(); m != want {
			t.Fatalf("got %q, want %q: every message once, in order", m, want)
		}
	}
	if n := sub.Metrics().GapsFilled.Load(); n != 2 {
		t.Errorf("%d messages read back, want 2 (m2 and m3)", n)
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
