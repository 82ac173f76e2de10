package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// publishRaw publishes ev to topic under prefix, as a node that is not in
// the test would.
func publishRaw(t *testing.T, rdb *goredis.Client, prefix, topic string, ev *hub.Event) {
	t.Helper()
	payload, err := encodeEvent(ev, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(context.Background(), prefix+topic, payload).Err(); err != nil {
		t.Fatal(err)
	}
}

func message(text string) *hub.Event {
	return &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: text}
}

// A broker's message that Redis did not take in time is delivered on its
// node at once; when Redis runs it late it is not delivered there again,
// also when the broker has been fenced off meanwhile (another broker
// claimed its node id while it was cut off). Before, a fenced broker took
// no event for its own, and its sessions got that message twice.
func TestLateMessageOfAFencedBrokerIsDeliveredOnce(t *testing.T) {
	s := newSameID(t, steady)
	proxy := startCutProxy(t, s.srv.Addr, "PUBLISH", true)
	a := startBroker(t, s.srv, func(cfg *Config) { s.set(cfg); cfg.Options.Addr = proxy.addr })
	seen := &events{}
	a.SetHandler(seen.handle)
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	defer cancel()
	if err := a.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	// Redis does not answer in time: a delivers it here, and notes it.
	if err := a.Publish(ctx, "lobby", message("late")); err != nil {
		t.Fatal(err)
	}
	if n := seen.count("lobby message late"); n != 1 {
		t.Fatalf("the message Redis did not take in time delivered %d times, want 1", n)
	}
	s.twinOf(a)
	if proxy.run(t) == 0 {
		t.Fatal("no publish was held back: the test did not run its case")
	}
	// What Redis publishes after the late message reaches a after it.
	rdb := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr})
	defer rdb.Close()
	publishRaw(t, rdb, a.prefix, "lobby", message("marker"))
	eventually(t, waitTimeout, "the marker", func() bool { return seen.has("lobby message marker") })
	if n := seen.count("lobby message late"); n != 1 {
		t.Errorf("the message Redis ran late, once a was fenced off, delivered %d times on a, want 1", n)
	}
}

// A broker whose node id another broker claimed, not fenced off yet (its
// next heartbeat will), publishes a message: the other broker's sessions
// get it, although it carries the same node id and number as a message of
// the other's own that Redis did not take in time. Before, the other took
// it for that message of its own coming back late, and dropped it.
func TestTwinDoesNotTakeTheOthersMessagesForItsOwn(t *testing.T) {
	s := newSameID(t, steady)
	// a heartbeats seldom: it is not fenced off within the test.
	a := startBroker(t, s.srv, func(cfg *Config) { s.set(cfg); cfg.Heartbeat, cfg.PresenceTTL = time.Minute, 2*time.Minute })
	a.SetHandler(func(string, *hub.Event) {})
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	defer cancel()
	if err := a.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr})
	defer rdb.Close()
	if err := rdb.Del(ctx, a.prefix+"claim:n1").Err(); err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, s.srv.Addr, "PUBLISH", true)
	twin := startBroker(t, s.srv, func(cfg *Config) { s.set(cfg); cfg.Options.Addr = proxy.addr })
	seen := &events{}
	twin.SetHandler(seen.handle)
	if err := twin.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	// The twin's first message, which Redis does not take in time (run
	// at the end), and a's first: both numbered 1 under n1.
	if err := twin.Publish(ctx, "lobby", message("twin's")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "lobby", message("a's")); err != nil {
		t.Fatal(err)
	}
	if a.Fenced() {
		t.Fatal("a fenced off already: the test did not run its case")
	}
	publishRaw(t, rdb, a.prefix, "lobby", message("marker"))
	eventually(t, waitTimeout, "the marker", func() bool { return seen.has("lobby message marker") })
	if n := seen.count("lobby message a's"); n != 1 {
		t.Errorf("a's message delivered %d times on the twin, want 1", n)
	}
	proxy.run(t)
	publishRaw(t, rdb, a.prefix, "lobby", message("marker 2"))
	eventually(t, waitTimeout, "the second marker", func() bool { return seen.has("lobby message marker 2") })
	if n := seen.count("lobby message twin's"); n != 1 {
		t.Errorf("the twin's message, run late, delivered %d times on the twin, want 1", n)
	}
}
