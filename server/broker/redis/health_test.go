package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// hungBroker is a broker on srv with a short CallTimeout, heartbeating
// every heartbeat, and what its handler is given.
func hungBroker(t *testing.T, srv *redistest.Server, heartbeat time.Duration, edit ...func(*Config)) (*Broker, *events) {
	t.Helper()
	b := startBroker(t, srv, func(cfg *Config) {
		cfg.Prefix = fmt.Sprintf("t%d", prefixes.Add(1))
		cfg.Heartbeat, cfg.PresenceTTL, cfg.CallTimeout = heartbeat, 2*time.Hour, 100*time.Millisecond
		for _, e := range edit {
			e(cfg)
		}
	})
	seen := &events{}
	b.SetHandler(seen.handle)
	return b, seen
}

// subscribedHung is a hungBroker on srv with a heartbeat too slow to
// matter, subscribed to topic. edit changes its config further.
func subscribedHung(t *testing.T, srv *redistest.Server, topic string, edit ...func(*Config)) (*Broker, *events) {
	t.Helper()
	b, seen := hungBroker(t, srv, time.Hour, edit...)
	if err := b.Subscribe(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	return b, seen
}

// connections is the cluster's connection count as Redis has it.
func connections(t *testing.T, b *Broker) int {
	t.Helper()
	s, err := b.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s.Connections
}

// A heartbeat whose reply is lost may be the one that told the node it had
// expired: the next ones say it is known. So after a heartbeat fails the
// node registers everything again. Here Redis holds the node but not its
// connection, as a reaper's heartbeat followed by the node's lost one
// leaves it.
func TestFailedHeartbeatRegistersAgain(t *testing.T) {
	srv := redistest.Start(t)
	b, _ := hungBroker(t, srv, 50*time.Millisecond)
	ctx := context.Background()
	c := hub.PresenceRecord{ID: "c1", User: "alice", Name: "Alice"}
	if _, _, err := b.AddConn(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddMember(ctx, "lounge", c); err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := removeConnScript.Run(ctx, rdb, nil, b.prefix, c.ID).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	eventually(t, waitTimeout, "redis taken for unreachable", func() bool { return b.Metrics().Unreachable.Load() > 0 })
	srv.Resume(t)
	took := eventually(t, waitTimeout, "alice registered again in lounge", func() bool {
		s, err := b.Snapshot(ctx)
		return err == nil && s.Connections == 1 && s.Rooms["lounge"] == 1
	})
	t.Logf("registered again %v after redis resumed", took.Round(time.Millisecond))
}

// A connection refused because Redis did not answer in time was sent to
// Redis all the same, and a paused Redis adds it when it resumes: the node
// removes it again.
func TestRefusedConnectionIsRemovedWhenRedisResumes(t *testing.T) {
	srv := redistest.Start(t)
	b, _ := hungBroker(t, srv, time.Hour) // only the heartbeat after the resume runs
	ctx := context.Background()
	// Redis knows the script, as it does once a node has served anyone, and
	// will run it, not answer NOSCRIPT.
	early := hub.PresenceRecord{ID: "early", User: "eve", Name: "Eve"}
	if _, _, err := b.AddConn(ctx, early); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.RemoveConn(ctx, early); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	start := time.Now()
	_, _, err := b.AddConn(ctx, hub.PresenceRecord{ID: "ghost", User: "gus", Name: "Gus"})
	if err == nil || errors.Is(err, errUnreachable) {
		t.Fatalf("add connection while redis is paused: got %v, want a timeout (the call sent)", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("add connection while redis is paused took %v, want about CallTimeout", d)
	}
	srv.Resume(t)
	eventually(t, waitTimeout, "redis answers again", func() bool { return !b.down.Load() })
	// Redis runs the refused call on resuming, before what is sent after;
	// the repair is made at two heartbeats all the same.
	for range undoRounds {
		if _, err := b.heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := connections(t, b); n != 0 {
		t.Errorf("connections after redis resumed: got %d, want 0 (the refused one removed)", n)
	}
}

// An event Redis did not take in time is delivered on this node instead;
// when a paused Redis resumes and publishes it after all, this node does
// not deliver it twice.
func TestEventDeliveredOnceAcrossAPause(t *testing.T) {
	srv := redistest.Start(t)
	b, seen := subscribedHung(t, srv, "lobby")
	ctx := context.Background()
	srv.Pause(t)
	start := time.Now()
	if err := b.Publish(ctx, "lobby", &hub.Event{Kind: hub.KindMessage, Message: "during"}); err != nil {
		t.Fatalf("publish while redis is paused: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("publish while redis is paused took %v, want about CallTimeout", d)
	}
	if !seen.has("lobby message during") {
		t.Fatalf("event published while redis is paused not delivered on this node")
	}
	srv.Resume(t)
	eventually(t, waitTimeout, "redis answers again", func() bool { return !b.down.Load() })
	if err := b.Publish(ctx, "lobby", &hub.Event{Kind: hub.KindMessage, Message: "after"}); err != nil {
		t.Fatal(err)
	}
	if !seen.has("lobby message after") {
		t.Fatalf("event published after redis resumed not delivered")
	}
	if n := seen.count("lobby message during"); n != 1 {
		t.Errorf("event published while redis was paused delivered %d times, want 1", n)
	}
}

// A pub/sub connection on which Redis answers nothing (hung, or behind a
// network that drops packets, where no error ever comes) is replaced, so
// that the node does not wait on a dead subscription for good; events flow
// again once Redis answers.
func TestSilentPubSubConnectionIsReplaced(t *testing.T) {
	srv := redistest.Start(t)
	b, seen := hungBroker(t, srv, 50*time.Millisecond) // silent for 400ms: replaced
	ctx := context.Background()
	if err := b.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	eventually(t, waitTimeout, "pub/sub connection taken for broken", func() bool { return !b.up.Load() })
	srv.Resume(t)
	eventually(t, waitTimeout, "pub/sub connection back", func() bool { return b.up.Load() && !b.down.Load() })
	if got := b.Metrics().Reconnects.Load(); got < 1 {
		t.Errorf("reconnects: got %d, want at least 1", got)
	}
	if err := b.Publish(ctx, "lobby", &hub.Event{Kind: hub.KindMessage, Message: "after"}); err != nil {
		t.Fatal(err)
	}
	if !seen.has("lobby message after") {
		t.Errorf("event published after redis resumed not delivered")
	}
}

// A ban check, made at every connect and join, is bound like the session's
// other calls: it fails at once while Redis is taken for unreachable, and
// within about CallTimeout while Redis hangs.
func TestBanCheckIsBound(t *testing.T) {
	srv := redistest.Start(t)
	b, _ := hungBroker(t, srv, time.Hour)
	ctx := context.Background()
	if _, _, err := b.Banned(ctx, "eve", "lounge"); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	start := time.Now()
	if _, _, err := b.Banned(ctx, "eve", "lounge"); err == nil {
		t.Fatal("ban check while redis is paused: got no error")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ban check while redis is paused took %v, want about CallTimeout", d)
	}
	if !b.down.Load() {
		t.Error("a ban check that timed out left redis taken for reachable")
	}
	if _, _, err := b.Banned(ctx, "eve", "lounge"); !errors.Is(err, errUnreachable) {
		t.Errorf("ban check while redis is taken for unreachable: got %v, want it to fail at once", err)
	}
	srv.Resume(t)
}

// lateReplies makes Redis's replies to PUBLISH late: the command runs (its
// event reaches the subscribers), then the caller waits until the event
// has reached this node's handler and is told the call timed out, as when
// a reply is stuck behind a slow network.
type lateReplies struct {
	seen func() bool
	cmds []string // the commands whose replies come late; default publish
}

func (lateReplies) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (lateReplies) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
func (h lateReplies) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		cmds := h.cmds
		if cmds == nil {
			cmds = []string{"publish"}
		}
		if err := next(ctx, cmd); err != nil || !slices.Contains(cmds, cmd.Name()) {
			return err
		}
		for !h.seen() && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cmd.SetErr(context.DeadlineExceeded)
		return context.DeadlineExceeded
	}
}

// patientCalls gives a broker's calls a bound no busy machine reaches: the
// tests of late replies make them late with lateReplies, and 100ms had a
// call of the set-up fail in a full test run, the node then taking Redis
// for unreachable.
func patientCalls(cfg *Config) { cfg.CallTimeout = 5 * time.Second }

// An event Redis published, whose reply came back too late, has reached
// this node already: Publish does not deliver it here a second time.
func TestEventWithALateReplyDeliveredOnce(t *testing.T) {
	b, seen := subscribedHung(t, redistest.Start(t), "lobby", patientCalls)
	ctx := context.Background()
	b.rdb.AddHook(lateReplies{seen: func() bool { return seen.has("lobby message late") }})
	if err := b.Publish(ctx, "lobby", &hub.Event{Kind: hub.KindMessage, Message: "late"}); err != nil {
		t.Fatalf("publish with a late reply: %v", err)
	}
	if n := seen.count("lobby message late"); n != 1 {
		t.Errorf("event with a late reply delivered %d times, want 1", n)
	}
}

// An Append whose script ran but whose reply came back too late has been
// logged and delivered: the sender is told so, with its position, not that
// it failed (it would send it again, and a resend without an id is a second
// message), and it is delivered here once.
func TestAppendWithALateReplySucceeds(t *testing.T) {
	b, seen := subscribedHung(t, redistest.Start(t), "room:late", patientCalls)
	ctx := context.Background()
	opt := hub.AppendOptions{Log: hub.LogLimits{Size: 10}}
	first, err := b.Append(ctx, "room:late", &hub.Event{Kind: hub.KindMessage, Message: "first"}, opt)
	if err != nil {
		t.Fatal(err)
	}
	b.rdb.AddHook(lateReplies{seen: func() bool { return seen.has("room:late message late") }, cmds: []string{"evalsha", "eval"}})
	r, err := b.Append(ctx, "room:late", &hub.Event{Kind: hub.KindMessage, Message: "late"}, opt)
	if err != nil {
		t.Fatalf("append with a late reply: %v, want it acknowledged", err)
	}
	if r.Offset != first.Offset+1 || r.Epoch != first.Epoch {
		t.Errorf("late append at %+v, want offset %d of epoch %q", r.Position, first.Offset+1, first.Epoch)
	}
	if n := seen.count("room:late message late"); n != 1 {
		t.Errorf("late append delivered %d times, want 1", n)
	}
}

// strayCount is how many strays b remembers.
func (b *Broker) strayCount() int {
	b.echoMu.Lock()
	defer b.echoMu.Unlock()
	return len(b.strays)
}

// A publish Redis refuses with an error reply (here NOPERM: the node's user
// may no longer publish) never runs: the event is delivered on this node
// only, and is not remembered as a stray that might come back.
func TestRefusedPublishLeavesNoStray(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	allow := func(rule string) {
		t.Helper()
		if err := rdb.Do(ctx, "ACL", "SETUSER", "node", "on", ">node-secret", "~*", "&*", "+@all", rule).Err(); err != nil {
			t.Fatal(err)
		}
	}
	allow("+publish")
	b := newBroker(t, srv, fmt.Sprintf("t%d", prefixes.Add(1)), steady, func(cfg *Config) {
		cfg.Options.Username, cfg.Options.Password = "node", "node-secret"
	})
	got := make(chan string, 4)
	b.SetHandler(func(_ string, ev *hub.Event) { got <- ev.Message })
	if err := b.Subscribe(ctx, "room:refused"); err != nil {
		t.Fatal(err)
	}
	allow("-publish")
	if err := b.Publish(ctx, "room:refused", &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "m"}); err != nil {
		t.Fatalf("publish refused by redis: %v, want delivered on this node", err)
	}
	select {
	case m := <-got:
		if m != "m" {
			t.Fatalf("got %q, want m", m)
		}
	default:
		t.Fatal("refused event not delivered on this node")
	}
	if n := b.Metrics().LocalOnly.Load(); n != 1 {
		t.Errorf("%d events delivered on this node only, want 1", n)
	}
	if n := b.strayCount(); n != 0 {
		t.Errorf("%d strays remembered after a refused publish, want 0: Redis never ran it", n)
	}
	if b.down.Load() {
		t.Error("redis taken for unreachable after an error reply")
	}
}

// Strays are forgotten after strayTTL, and never more than maxStrays are
// remembered.
func TestStraysAreBounded(t *testing.T) {
	srv := redistest.Start(t)
	b := newCluster(t, srv, 1, steady)[0]
	for seq := range uint64(maxStrays + 10) {
		b.abandonEcho(1<<40+seq, true) // numbers no Publish of b's has
	}
	if n := b.strayCount(); n != maxStrays {
		t.Errorf("%d strays remembered, want the bound %d", n, maxStrays)
	}
	b.sweepStrays(time.Now().Add(strayTTL + time.Second))
	if n := b.strayCount(); n != 0 {
		t.Errorf("%d strays remembered after strayTTL, want 0", n)
	}
}
