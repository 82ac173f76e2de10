package client_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// user is a client with a Recovery whose network can be cut: its TCP
// connections are closed under it, as a dropped network would, and the
// frames it had received but not yet read are lost with them.
type user struct {
	t     *testing.T
	name  string
	token string
	c     *client.Client
	s     *client.Session
	rec   *client.Recovery
	dups  int // frames Recovery dropped as already seen

	mu    sync.Mutex // protects conns
	conns []net.Conn
}

func newUser(t *testing.T, srv *nodetest.Server, name string) *user {
	t.Helper()
	u := &user{t: t, name: name, token: srv.Token(t, name, false), rec: client.NewRecovery()}
	u.dial(srv)
	u.connect()
	return u
}

// dial makes srv the node the user's next sessions go to.
func (u *user) dial(srv *nodetest.Server) {
	u.t.Helper()
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			u.mu.Lock()
			u.conns = append(u.conns, conn)
			u.mu.Unlock()
		}
		return conn, err
	}
	c, err := client.Dial(srv.GRPCAddr, client.WithToken(u.token), client.WithDialOptions(grpc.WithContextDialer(dialer)))
	if err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { c.Close() })
	u.c = c
}

// connect opens a session, as a client does after a cut (its gRPC
// connection dials again), and waits for the welcome.
func (u *user) connect() {
	u.t.Helper()
	var err error
	for range 50 {
		if u.s, err = u.c.Connect(context.Background()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // the transport is dialling again
	}
	if err != nil {
		u.t.Fatalf("%s: connect: %v", u.name, err)
	}
	s := u.s
	u.t.Cleanup(func() { s.Close() })
	u.next("welcome", func(f *chatv1.ServerFrame) bool { return f.GetSystem() != nil })
}

// cut closes the network under the session and forgets what it had not read.
func (u *user) cut() {
	u.mu.Lock()
	for _, c := range u.conns {
		c.Close()
	}
	u.conns = nil
	u.mu.Unlock()
	for range u.s.Events() {
	}
}

// next returns the next frame that Recovery lets through and match accepts.
func (u *user) next(what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	u.t.Helper()
	return nodetest.Await(u.t, u.name, u.s, what, func(f *chatv1.ServerFrame) bool {
		if !u.rec.Observe(f) {
			u.dups++
			return false
		}
		return match(f)
	})
}

// send sends f after Recovery tracks it; a broken connection is no error:
// Resume sends it again.
func (u *user) send(f *chatv1.ClientFrame) { u.s.SendFrame(u.rec.Track(f)) }

// resume reconnects to srv and picks up where the cut left off.
func (u *user) resume(srv *nodetest.Server) {
	u.t.Helper()
	u.dial(srv)
	u.connect()
	if err := u.rec.Resume(u.s); err != nil {
		u.t.Fatalf("%s: resume: %v", u.name, err)
	}
}

// texts are n messages as the publisher numbers them.
func texts(n int, format string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// nodes are where a recovery scenario runs: the publisher's node, the
// node of the first connection and the node of the one after the cut.
type nodes struct{ pub, before, after *nodetest.Server }

// setups run each scenario on one node (memory broker), and across the
// nodes of a cluster on a real Redis, the client coming back to another.
var setups = []struct {
	name  string
	start func(*testing.T) nodes
}{
	{"one node", func(t *testing.T) nodes {
		n := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
		return nodes{n, n, n}
	}},
	{"another node", func(t *testing.T) nodes {
		rs := redistest.Start(t)
		return nodes{nodetest.StartOnRedis(t, rs.URL()), nodetest.StartOnRedis(t, rs.URL()), nodetest.StartOnRedis(t, rs.URL())}
	}},
}

// A client's network is cut while messages flow into its room, and more are
// published while it is away; it reconnects and resumes. It sees every
// message once, in order, and the room says it recovered.
func TestRecoveryRoomAcrossACut(t *testing.T) {
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) { roomAcrossACut(t, setup.start(t)) })
	}
}

func roomAcrossACut(t *testing.T, at nodes) {
	const room, total, cutAfter = "tapas", 120, 20
	bob := nodetest.Open(t, at.pub.GRPCAddr, at.pub.Token(t, "bob", false), "bob")
	bob.JoinFrom(room, nil, 0)
	bob.Drain()
	alice := newUser(t, at.before, "alice")
	alice.send(alice.rec.Join(room, 0))
	alice.next("room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined() != nil })

	var sent atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i := range total {
			if bob.S.SendFrame(nodetest.RoomMessage(fmt.Sprintf("b%d", i), room, fmt.Sprintf("m%03d", i))) != nil {
				return
			}
			sent.Add(1)
			time.Sleep(time.Millisecond) // pacing, so that messages flow during the cut and the rejoin
		}
	})

	var got []string
	isMessage := func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m != nil {
			got = append(got, m.Message)
			return true
		}
		return false
	}
	for len(got) < cutAfter {
		alice.next("message", isMessage)
	}
	alice.cut()
	away := sent.Load()
	for deadline := time.Now().Add(nodetest.WaitTimeout); sent.Load() < min(away+10, total); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("publisher stuck at %d messages", sent.Load())
		}
	}
	alice.resume(at.after)
	j := alice.next("room_joined again", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined() != nil }).GetRoomJoined()
	if !j.GetRecovered() {
		t.Errorf("room_joined after the cut: recovered %v, want true", j.Recovered)
	}
	for len(got) < total {
		alice.next("message", isMessage)
	}
	if want := texts(total, "m%03d"); !slices.Equal(got, want) {
		t.Errorf("alice saw %q,\nwant every message once, in order: %q", got, want)
	}
	if p := alice.rec.Position(room); p.GetOffset() != total {
		t.Errorf("position after the last message: %v, want offset %d", p, total)
	}
}

// The same for private messages: they keep coming while the client is cut
// off and while it recovers its inbox (live ones may come before the
// replay); it sees each once.
func TestRecoveryPrivateAcrossACut(t *testing.T) {
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) { privateAcrossACut(t, setup.start(t)) })
	}
}

func privateAcrossACut(t *testing.T, at nodes) {
	const total, cutAfter = 60, 10
	bob := nodetest.Open(t, at.pub.GRPCAddr, at.pub.Token(t, "bob", false), "bob")
	bob.Drain()
	alice := newUser(t, at.before, "alice")

	next := make(chan struct{}) // one message per receive, then free flow
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i := range total {
			if i < cutAfter {
				<-next
			}
			if bob.S.SendFrame(nodetest.PrivateMessage(fmt.Sprintf("p%d", i), "alice", fmt.Sprintf("p%03d", i))) != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	got := map[string]int{}
	var order []uint64
	isPrivate := func(f *chatv1.ServerFrame) bool {
		if m := f.GetPrivateMessage(); m != nil {
			got[m.Message]++
			order = append(order, m.Offset)
			return true
		}
		return false
	}
	for range cutAfter {
		next <- struct{}{}
		alice.next("private message", isPrivate)
	}
	alice.cut()
	alice.resume(at.after)
	for len(order) < total {
		alice.next("private message", isPrivate)
	}
	for _, text := range texts(total, "p%03d") {
		if got[text] != 1 {
			t.Errorf("alice saw %q %d times, want once", text, got[text])
		}
	}
	// The replay may follow live messages: a client shows them by offset.
	slices.Sort(order)
	for i, off := range order {
		if off != uint64(i)+1 {
			t.Fatalf("offsets seen %v, want 1 to %d each once", order, total)
		}
	}
	if in := alice.rec.Inbox(); in.GetOffset() != total {
		t.Errorf("inbox after the last message: %v, want offset %d", in, total)
	}
}

// A message whose ack was lost in a cut, and one sent while the network
// was down, are sent again with the same ids on the next connection: each
// reaches the room once, and the lost ack comes again with the same offset.
func TestRecoveryResendsWhatWasNotAcknowledged(t *testing.T) {
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) { resendsWhatWasNotAcknowledged(t, setup.start(t)) })
	}
}

func resendsWhatWasNotAcknowledged(t *testing.T, at nodes) {
	const room = "resend"
	bob := nodetest.Open(t, at.pub.GRPCAddr, at.pub.Token(t, "bob", false), "bob")
	bob.JoinFrom(room, nil, 0)
	alice := newUser(t, at.before, "alice")
	alice.send(alice.rec.Join(room, 0))
	alice.next("room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined() != nil })

	alice.send(nodetest.RoomMessage("", room, "first"))
	first := bob.Await("first", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage()
	alice.cut() // before alice read the ack
	alice.send(nodetest.RoomMessage("", room, "second"))
	if n := len(alice.rec.Pending()); n != 2 {
		t.Fatalf("%d frames pending after the cut, want 2", n)
	}

	alice.resume(at.after)
	var acks []*chatv1.Ack
	for len(acks) < 2 {
		acks = append(acks, alice.next("ack", func(f *chatv1.ServerFrame) bool { return f.GetAck() != nil }).GetAck())
	}
	if acks[0].Offset != first.Offset || acks[1].Offset != first.Offset+1 {
		t.Errorf("acks at offsets %d and %d, want %d (the first copy's) and %d", acks[0].Offset, acks[1].Offset, first.Offset, first.Offset+1)
	}
	if n := len(alice.rec.Pending()); n != 0 {
		t.Errorf("%d frames pending after their acks, want 0", n)
	}
	alice.send(nodetest.RoomMessage("", room, "marker"))
	seen := []string{first.Message}
	bob.Await("marker", func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m != nil {
			seen = append(seen, m.Message)
		}
		return f.GetMessage().GetMessage() == "marker"
	})
	if want := []string{"first", "second", "marker"}; !slices.Equal(seen, want) {
		t.Errorf("bob saw %q, want %q: each once", seen, want)
	}
}

// A room joined under another spelling of its name (not NFC) is followed
// under the server's: its position moves with its messages.
func TestRecoveryFollowsTheServersSpelling(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := newUser(t, srv, "alice")
	alice.send(alice.rec.Join("cafe\u0301", 0)) // e + combining acute
	j := alice.next("room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined() != nil }).GetRoomJoined()
	if j.Room != "caf\u00e9" {
		t.Fatalf("joined %q, want the NFC spelling", j.Room)
	}
	alice.send(nodetest.RoomMessage("", "caf\u00e9", "hola"))
	alice.next("own message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil })
	if p := alice.rec.Position("caf\u00e9"); p.GetOffset() != 1 {
		t.Errorf("position in %q: %v, want offset 1", j.Room, p)
	}
}

// joinAnswer is the server's answer to join: its room_joined at offset, or
// an error with code.
func joinAnswer(join *chatv1.ClientFrame, offset uint64, code string) *chatv1.ServerFrame {
	if code != "" {
		return &chatv1.ServerFrame{Id: join.Id, Event: &chatv1.ServerFrame_Error{Error: &chatv1.Error{Code: code}}}
	}
	return &chatv1.ServerFrame{Id: join.Id, Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{
		Room: join.GetJoinRoom().GetRoom(), Offset: offset, Epoch: "e1"}}}
}

// The answers to a join of a room left and joined again before they came
// are moot (the server carried out the leave after that join), fed to a
// Recovery in an order a real node can give but not be made to: the old
// join's room_joined does not place the room (the join again is still to
// be answered), and its refusal for good does not forget the room joined
// again. Recovery.Leave says whether a leave_room is to be sent: not when
// every join of the room was refused for now (Track of Join's frame
// changes nothing), nor once it was left or its join refused for good.
func TestAnswersToAJoinBeforeALeaveAreMoot(t *testing.T) {
	r := client.NewRecovery()
	old := r.Join("copas", 0)
	if !r.Leave("copas") {
		t.Error("Leave of copas, its join unanswered: false, want a leave_room")
	}
	again := r.Join("copas", 0)
	r.Observe(joinAnswer(old, 7, ""))
	if p := r.Position("copas"); p != nil {
		t.Errorf("copas at %v after the old join's room_joined, want nowhere: the join again is unanswered", p)
	}
	r.Observe(joinAnswer(again, 9, ""))

	old = r.Join("cañas", 0)
	r.Leave("cañas")
	again = r.Join("cañas", 0)
	r.Observe(joinAnswer(old, 0, chatcodes.CodeForbidden))
	r.Observe(joinAnswer(again, 4, ""))
	for room, want := range map[string]uint64{"copas": 9, "cañas": 4} {
		if p := r.Position(room); p.GetOffset() != want {
			t.Errorf("%s at %v, want offset %d", room, p, want)
		}
	}

	tapas := r.Track(r.Join("tapas", 0)) // Join's own frame: not one sent by hand
	r.Observe(joinAnswer(tapas, 0, chatcodes.CodeRateLimited))
	if r.Leave("tapas") {
		t.Error("Leave of tapas, its only join refused for now: true, want no leave_room")
	}
	tapas = r.Join("tapas", 0)
	r.Observe(joinAnswer(tapas, 3, ""))
	r.Observe(joinAnswer(r.Join("tapas", 0), 0, chatcodes.CodeRateLimited))
	if !r.Leave("tapas") {
		t.Error("Leave of tapas, joined and its join again refused for now: false, want a leave_room")
	}
	if r.Leave("tapas") {
		t.Error("Leave of tapas, left: true, want no leave_room")
	}
	r.Observe(joinAnswer(r.Join("bravas", 0), 0, chatcodes.CodeForbidden))
	if r.Leave("bravas") {
		t.Error("Leave of bravas, its join refused for good: true, want no leave_room")
	}
}
