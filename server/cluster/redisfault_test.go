package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// These tests put real faults into the cluster's redis-server: SIGSTOP (a
// hung Redis: connections open, nothing answered) and SIGKILL then a
// restart with no data. The bounds are a node's promise (README, "Redis
// lost while running"): its own sessions keep chatting, every message with
// an id is answered promptly, and presence is whole again within a few
// seconds of Redis returning.

// promptly bounds the wait for anything a node answers on its own while
// Redis does not answer: well under the pauses below.
const promptly = time.Second

// faultCluster is two nodes: alice and dora on the first, bob on the
// second, all in room lounge.
func faultCluster(t *testing.T) (cl *cluster, alice, dora, bob *user) {
	t.Helper()
	return faultClusterTimed(t, steadyHeartbeat, steadyTTL)
}

// faultClusterTimed is faultCluster with the given presence timings.
func faultClusterTimed(t *testing.T, heartbeat, ttl time.Duration) (cl *cluster, alice, dora, bob *user) {
	t.Helper()
	// A short CallTimeout: what a session may wait once for a hung Redis.
	cl = &cluster{redis: redistest.Start(t), prefix: fmt.Sprintf("c%d", clusters.Add(1)),
		heartbeat: heartbeat, ttl: ttl, callTimeout: 250 * time.Millisecond}
	cl.addNode(t)
	cl.addNode(t)
	alice, dora = connect(t, cl.nodes[0], "alice", false), connect(t, cl.nodes[0], "dora", false)
	bob = connect(t, cl.nodes[1], "bob", false)
	for _, u := range []*user{alice, dora, bob} {
		u.join("lounge")
	}
	wholePresence(t, alice, bob)
	return cl, alice, dora, bob
}

// usersOf is /users as u's node answers it, or nil if it cannot.
func usersOf(u *user) []string {
	ctx, cancel := context.WithTimeout(context.Background(), promptly)
	defer cancel()
	got, err := u.c.Users(ctx)
	if err != nil {
		return nil
	}
	return got
}

// wholePresence waits until every node, through the users given, lists
// alice, bob and dora, and returns how long that took.
func wholePresence(t *testing.T, on ...*user) time.Duration {
	t.Helper()
	want := []string{"alice", "bob", "dora"}
	start := time.Now()
	for _, u := range on {
		eventually(t, waitTimeout, "users on "+u.name+"'s node back to "+fmt.Sprint(want), func() bool {
			return slices.Equal(usersOf(u), want)
		})
	}
	return time.Since(start)
}

// localChat has from send n lobby messages, one every gap, and checks
// that to receives each; it returns the worst latency seen.
func localChat(t *testing.T, from, to *user, tag string, n int, gap time.Duration) time.Duration {
	t.Helper()
	sent := make([]atomic.Int64, n)
	go func() {
		for i := range n {
			sent[i].Store(time.Now().UnixNano())
			if from.s.Send("", fmt.Sprintf("%s %d", tag, i)) != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	var worst time.Duration
	for i := range n {
		text := fmt.Sprintf("%s %d", tag, i)
		to.await(text, isMessage(text))
		worst = max(worst, time.Since(time.Unix(0, sent[i].Load())))
	}
	return worst
}

// answered sends f and waits for its ack or error, which must come within
// promptly; it returns the error code ("" for an ack).
func answered(t *testing.T, u *user, f *chatv1.ClientFrame) string {
	t.Helper()
	start := time.Now()
	u.must(u.s.SendFrame(f))
	got, ok := u.poll(promptly, func(g *chatv1.ServerFrame) bool {
		return g.GetId() == f.GetId() && (g.GetAck() != nil || g.GetError() != nil)
	})
	if !ok {
		t.Fatalf("%s: frame %q not answered within %v", u.name, f.GetId(), promptly)
	}
	t.Logf("%s: frame %q answered %q in %v", u.name, f.GetId(), got.GetError().GetCode(), time.Since(start).Round(time.Millisecond))
	return got.GetError().GetCode()
}

// privateDelivered checks that a private message from one user to another
// is acked and delivered.
func privateDelivered(t *testing.T, from, to *user, id string) {
	t.Helper()
	text := "private " + id
	from.must(from.s.SendFrame(nodetest.PrivateMessage(id, to.id, text)))
	f := from.await("answer to "+id, func(f *chatv1.ServerFrame) bool {
		return f.GetId() == id && (f.GetAck() != nil || f.GetError() != nil)
	})
	if f.GetError() != nil {
		t.Fatalf("%s to %s: got error %v, want an ack", from.name, to.name, f.GetError())
	}
	to.await(text, func(f *chatv1.ServerFrame) bool { return f.GetPrivateMessage().GetMessage() == text })
}

// whileRedisAway checks what the users see while Redis does not answer:
// local lobby chat with bounded latency, and prompt answers to messages
// with an id.
func whileRedisAway(t *testing.T, alice, dora *user, tag string) {
	t.Helper()
	worst := localChat(t, alice, dora, tag, 20, 100*time.Millisecond)
	t.Logf("lobby chat on one node while redis is away: worst latency %v", worst.Round(time.Millisecond))
	if worst > promptly {
		t.Errorf("lobby chat on one node while redis is away: worst latency %v, want under %v", worst, promptly)
	}
	for _, f := range []*chatv1.ClientFrame{
		nodetest.RoomMessage(tag+"-room", "lounge", "room message while redis is away"),
		{Id: tag + "-lobby", Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Message: "lobby message with an id"}}},
		nodetest.PrivateMessage(tag+"-private", "bob", "private message while redis is away"),
	} {
		if code := answered(t, alice, f); code != "unavailable" {
			t.Errorf("frame %q while redis is away: got %q, want unavailable", f.GetId(), code)
		}
	}
	worst = localChat(t, dora, alice, tag+" reply", 5, 50*time.Millisecond)
	if worst > promptly {
		t.Errorf("reply on one node while redis is away: worst latency %v, want under %v", worst, promptly)
	}
}

// afterRedisReturns checks that presence is whole again on both nodes and
// private messages are delivered across them.
func afterRedisReturns(t *testing.T, alice, dora, bob *user, tag string) {
	t.Helper()
	took := wholePresence(t, alice, bob)
	t.Logf("users complete on both nodes %v after redis returned", took.Round(time.Millisecond))
	privateDelivered(t, bob, dora, tag+"-to-dora")
	privateDelivered(t, dora, bob, tag+"-to-bob")
	// And it stays whole: a node that thinks it is registered while Redis
	// lost it would show here, a few heartbeats later.
	time.Sleep(4 * steadyHeartbeat)
	for _, u := range []*user{alice, bob} {
		if got := usersOf(u); !slices.Equal(got, []string{"alice", "bob", "dora"}) {
			t.Errorf("users on %s's node after redis returned: got %q, want [alice bob dora]", u.name, got)
		}
	}
}

// A hung Redis (SIGSTOP) for a few seconds.
func TestRedisPause(t *testing.T) {
	cl, alice, dora, bob := faultCluster(t)
	cl.redis.Pause(t)
	paused := time.Now()
	whileRedisAway(t, alice, dora, "paused")
	if d := 4*time.Second - time.Since(paused); d > 0 {
		time.Sleep(d) // long enough for every node's presence to expire
	}
	cl.redis.Resume(t)
	afterRedisReturns(t, alice, dora, bob, "resumed")
}

// A join that is a node's first call to a hung Redis is answered promptly
// too, long before a heartbeat would find Redis hung: the wait for Redis to
// confirm the subscription is bounded.
func TestJoinWhileRedisPaused(t *testing.T) {
	cl, alice, _, _ := faultClusterTimed(t, 5*time.Second, 15*time.Second)
	cl.redis.Pause(t)
	join := &chatv1.ClientFrame{Id: "join-den", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "den"}}}
	if code := answered(t, alice, join); code != "unavailable" {
		t.Errorf("join while redis is paused: got %q, want unavailable", code)
	}
	cl.redis.Resume(t)
}

// A Redis killed, then restarted with no data.
func TestRedisKillAndRestart(t *testing.T) {
	cl, alice, dora, bob := faultCluster(t)
	cl.redis.Stop(t)
	whileRedisAway(t, alice, dora, "killed")
	cl.redis.Restart(t)
	afterRedisReturns(t, alice, dora, bob, "restarted")
}

// Room messages acked right after Redis restarted empty, while the other
// node is still reconnecting to it, reach that node's members all the same,
// in order: a message acked is never lost to a member that stays.
func TestAckedAfterRedisRestartReachesOtherNode(t *testing.T) {
	cl, alice, _, bob := faultCluster(t)
	alice.must(alice.s.SendFrame(nodetest.RoomMessage("before", "lounge", "before")))
	bob.await("before", isMessage("before"))
	cl.redis.Stop(t)
	cl.redis.Restart(t)
	var acked []string
	for i := 0; len(acked) < 5 && i < 200; i++ {
		id := fmt.Sprintf("r%d", i)
		if code := answered(t, alice, nodetest.RoomMessage(id, "lounge", id)); code == "" {
			acked = append(acked, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(acked) < 5 {
		t.Fatalf("acked %q after redis restarted, want 5", acked)
	}
	// The next message, once the other node surely receives again, shows
	// it what it missed.
	time.Sleep(1500 * time.Millisecond)
	alice.must(alice.s.SendFrame(nodetest.RoomMessage("last", "lounge", "last")))
	want := append(acked, "last")
	var got []string
	for _, f := range bob.until("last", isMessage("last")) {
		if m := f.GetMessage().GetMessage(); m != "" && f.GetMessage().GetRoom() == "lounge" {
			got = append(got, m)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("bob got %q, want %q", got, want)
	}
}
