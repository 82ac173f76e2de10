package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node/nodetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (c *cluster) tokens(t *testing.T) func(string) string {
	return func(user string) string { return c.nodes[0].Token(t, user, false) }
}

// A client cut from one node recovers its room on another: every message
// once, in order, while the publisher (on a third node) goes on.
func TestRoomRecoveryOnAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	nodetest.RoomRecovery(t, c.tokens(t), c.nodes[0].GRPCAddr, c.nodes[1].GRPCAddr, c.nodes[2].GRPCAddr)
}

func TestPrivateRecoveryOnAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	nodetest.PrivateRecovery(t, c.tokens(t), c.nodes[0].GRPCAddr, c.nodes[1].GRPCAddr, c.nodes[2].GRPCAddr)
}

// A resend through another node is recognised cluster-wide.
func TestResendOnAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	nodetest.Resend(t, c.tokens(t), c.nodes[0].GRPCAddr, c.nodes[1].GRPCAddr, c.nodes[2].GRPCAddr)
}

// With Redis gone (kill -9), a message with an id is refused with
// unavailable and its id, never dropped in silence.
func TestUnavailableWhileRedisIsDown(t *testing.T) {
	c := startCluster(t, 1)
	alice := connect(t, c.nodes[0], "alice", false)
	alice.join("lounge")
	c.redis.Stop(t)
	for _, f := range []*chatv1.ClientFrame{
		nodetest.RoomMessage("m1", "lounge", "lost?"),
		nodetest.PrivateMessage("p1", "bob", "lost?"),
		nodetest.RoomMessage("l1", "", "lost?"),
	} {
		alice.must(alice.s.SendFrame(f))
		got := alice.await("answer to "+f.Id, func(f2 *chatv1.ServerFrame) bool { return f2.Id == f.Id })
		if got.GetError().GetCode() != "unavailable" {
			t.Errorf("answer to %s while Redis is down: %v, want an error with code unavailable", f.Id, got)
		}
	}
	// The calls that read the cluster say it is unavailable, and nothing of
	// what is behind it (the broker, its address, its keys): that is the
	// operator's business, in the node's log.
	raw := alice.c.Raw()
	_, histErr := raw.GetHistory(context.Background(), &chatv1.GetHistoryRequest{Room: "lounge"})
	_, membersErr := raw.ListMembers(context.Background(), &chatv1.ListMembersRequest{Room: "lounge"})
	for name, err := range map[string]error{"GetHistory": histErr, "ListMembers": membersErr} {
		st := status.Convert(err)
		if msg := strings.ToLower(st.Message()); st.Code() != codes.Unavailable || strings.Contains(msg, "redis") || strings.Contains(msg, c.redis.Addr) || strings.Contains(msg, "room:") {
			t.Errorf("%s while Redis is down: %v %q, want Unavailable naming nothing behind it", name, st.Code(), st.Message())
		}
	}
}

// A room's history lives in Redis: it survives a restart of every node, and
// a client recovers across it.
func TestHistorySurvivesRestartOfEveryNode(t *testing.T) {
	c := startCluster(t, 2)
	alice := connect(t, c.nodes[0], "alice", false)
	alice.join("lasting")
	var last *chatv1.Ack
	for i := range 5 {
		id := fmt.Sprintf("k%d", i)
		alice.must(alice.s.SendFrame(nodetest.RoomMessage(id, "lasting", fmt.Sprintf("k%d", i))))
		last = alice.await("ack", nodetest.IsAck(id)).GetAck()
	}
	alice.s.Close()
	for i, srv := range c.nodes {
		srv.Stop(t)
		if err := c.brokers[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
	c.nodes, c.brokers = nil, nil
	c.addNode(t)
	c.addNode(t)

	cl := connect(t, c.nodes[1], "reader", false)
	res, err := cl.c.Raw().GetHistory(context.Background(), &chatv1.GetHistoryRequest{Room: "lasting"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range res.Messages {
		got = append(got, m.Message)
	}
	if want := []string{"k0", "k1", "k2", "k3", "k4"}; !slices.Equal(got, want) || res.Epoch != last.Epoch || res.Offset != last.Offset {
		t.Errorf("history after restarting every node: %q at %d in %q, want %q at %d in %q", got, res.Offset, res.Epoch, want, last.Offset, last.Epoch)
	}
	bob := nodetest.Open(t, c.nodes[0].GRPCAddr, c.tokens(t)("bob"), "bob")
	j := bob.JoinFrom("lasting", &chatv1.Position{Offset: 3, Epoch: last.Epoch}, 0)
	if j.Recovered == nil || !*j.Recovered {
		t.Fatalf("join since 3 after the restart: recovered %v, want true", j.Recovered)
	}
	for _, want := range []string{"k3", "k4"} {
		if m := bob.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage(); m.Message != want {
			t.Errorf("replay: got %q, want %q", m.Message, want)
		}
	}
}

// The WebSocket bridge speaks the same history frames, in JSON: a browser
// cut from one node acknowledges, recovers its room and its inbox on
// another.
func TestWebSocketRecoveryOnAnotherNode(t *testing.T) {
	c := startCluster(t, 2)
	bob := wsLogin(t, c.nodes[0], "bob")
	alice := wsLogin(t, c.nodes[1], "alice")
	for _, u := range []*wsUser{alice, bob} {
		u.send(map[string]any{"type": "join_room", "room": "web", "id": "j"})
		u.await("own room_joined", wsIs("room_joined", map[string]string{"id": "j"}))
	}
	bob.send(map[string]any{"type": "message", "room": "web", "message": "one", "id": "w1"})
	ack := bob.await("ack", wsIs("ack", map[string]string{"id": "w1", "room": "web"}))
	seen := alice.await("one", wsIs("message", map[string]string{"message": "one"}))
	if seen["offset"] != ack["offset"] || seen["epoch"] != ack["epoch"] || seen["offset"] == nil {
		t.Fatalf("message %v and its ack %v: want the same offset and epoch", seen, ack)
	}
	alice.conn.Close()
	bob.send(map[string]any{"type": "message", "room": "web", "message": "two", "id": "w2"})
	bob.await("ack", wsIs("ack", map[string]string{"id": "w2"}))
	bob.send(map[string]any{"type": "private_message", "target_user": "alice", "message": "psst", "id": "w3"})
	bob.await("ack", wsIs("ack", map[string]string{"id": "w3"}))

	alice = wsLogin(t, c.nodes[0], "alice")
	alice.send(map[string]any{"type": "join_room", "room": "web", "id": "j2",
		"since": map[string]any{"offset": seen["offset"], "epoch": seen["epoch"]}})
	j := alice.await("own room_joined", wsIs("room_joined", map[string]string{"id": "j2"}))
	if j["recovered"] != true {
		t.Errorf("room_joined %v, want recovered true", j)
	}
	alice.await("two", wsIs("message", map[string]string{"message": "two"}))
	alice.send(map[string]any{"type": "recover_private", "since": map[string]any{"offset": 0, "epoch": ""}})
	alice.await("psst", wsIs("private_message", map[string]string{"message": "psst"}))
	if r := alice.await("private_recovered", wsIs("private_recovered", nil)); r["recovered"] != true || r["offset"] != float64(1) {
		t.Errorf("private_recovered %v, want recovered at offset 1", r)
	}
}

// Joins on one node while a publisher on another posts: no gap, no duplicate.
func TestJoinWhilePublishingOnAnotherNode(t *testing.T) {
	c := startCluster(t, 2)
	nodetest.JoinWhilePublishing(t, c.tokens(t), c.nodes[0].GRPCAddr, c.nodes[1].GRPCAddr)
}

// A user whose inbox was empty at connect got every private message since
// live: a recovery from nothing repeats none of them.
func TestRecoverPrivateRepeatsNothingSentLive(t *testing.T) {
	c := startCluster(t, 2)
	alice := nodetest.Open(t, c.nodes[0].GRPCAddr, c.tokens(t)("alice"), "alice")
	if in := alice.Welcome.GetInbox(); in.GetOffset() != 0 || in.GetEpoch() != "" {
		t.Fatalf("welcome inbox %v, want an empty one", in)
	}
	bob := nodetest.Open(t, c.nodes[1].GRPCAddr, c.tokens(t)("bob"), "bob")
	for _, id := range []string{"p1", "p2"} {
		bob.Send(nodetest.PrivateMessage(id, "alice", id))
		bob.Await("ack", nodetest.IsAck(id))
		alice.Await(id, func(f *chatv1.ServerFrame) bool { return f.GetPrivateMessage().GetMessage() == id })
	}
	alice.Send(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_RecoverPrivate{RecoverPrivate: &chatv1.RecoverPrivate{Since: &chatv1.Position{}}}})
	f := alice.Await("private_recovered", func(f *chatv1.ServerFrame) bool {
		if m := f.GetPrivateMessage(); m != nil {
			t.Errorf("replayed %q, which came live", m.Message)
		}
		return f.GetPrivateRecovered() != nil
	})
	if r := f.GetPrivateRecovered(); !r.Recovered || r.Offset != 2 {
		t.Errorf("private_recovered %v, want recovered at offset 2", r)
	}
}
