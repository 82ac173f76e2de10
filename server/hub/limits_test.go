package hub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// codeEncoder writes an event as "kind code id", enough to tell answers apart.
type codeEncoder struct{}

func (codeEncoder) Encode(ev *hub.Event) ([]byte, error) {
	return []byte(ev.Kind.String() + " " + ev.Code + " " + ev.ID), nil
}

// closingTransport records frames and the reason it was closed for.
type closingTransport struct {
	mu     sync.Mutex // protects the fields below
	frames []string
	closed *hub.Disconnect
}

func (t *closingTransport) Encoder() hub.Encoder { return codeEncoder{} }
func (t *closingTransport) Write(frames [][]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range frames {
		t.frames = append(t.frames, string(f))
	}
	return nil
}

func (t *closingTransport) Close(d hub.Disconnect) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed == nil {
		t.closed = &d
	}
}

func (t *closingTransport) count(prefix string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, f := range t.frames {
		if strings.HasPrefix(f, prefix) {
			n++
		}
	}
	return n
}

func (t *closingTransport) closedWith() *hub.Disconnect {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// waitFor polls cond, which the hub's writer goroutines make true, for up
// to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clock is a hand-turned clock, so that rates are tested without sleeping.
type clock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// A connection gets its burst, then rate_limited for each frame over its
// rate, which is not carried out; one that keeps on for FloodTimeout is
// closed as a flood. Another member only ever sees what passed the limit.
func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := hub.New(hub.Config{Now: clk.Now, Limits: hub.Limits{MessagesPerSecond: 20, MessagesBurst: 40, UserMessagesPerSecond: hub.Off}}, memory.New())
	flooder, other := &closingTransport{}, &closingTransport{}
	fs, err := h.Open(ctx, hub.Identity{UserID: "flood", Name: "flood"}, flooder)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close(ctx)
	os, err := h.Open(ctx, hub.Identity{UserID: "other", Name: "other"}, other)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Close(ctx)

	// 100 frames at one instant: the burst passes, the rest are refused.
	for range 100 {
		fs.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Message: "x"})
	}
	waitFor(t, "60 rate_limited answers", func() bool { return flooder.count("error rate_limited") == 60 })
	waitFor(t, "the burst of 40 at the other member", func() bool { return other.count("message") == 40 })
	if d := flooder.closedWith(); d != nil {
		t.Fatalf("closed with %+v after one burst, want it open", d)
	}

	// Keep flooding, 100 frames every 100ms: after FloodTimeout it is closed.
	for i := 0; flooder.closedWith() == nil; i++ {
		if i > 60 {
			t.Fatalf("still open after %v of flooding, want closed after 5s", time.Duration(i)*100*time.Millisecond)
		}
		clk.advance(100 * time.Millisecond)
		for range 100 {
			fs.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Message: "x"})
		}
	}
	d := flooder.closedWith()
	if d.Code != hub.DisconnectFlood || !strings.HasPrefix(d.Reason, hub.CodeFlood) {
		t.Errorf("closed with %+v, want DisconnectFlood with a reason starting %q", d, hub.CodeFlood)
	}
	// 20/s for about 5s, over the burst: what passed is what the rate allows.
	if n, most := other.count("message"), 40+20*6; n > most {
		t.Errorf("the other member got %d of the flood, want at most %d", n, most)
	}
	if got := h.Metrics().Limits.FloodDisconnects.Load(); got != 1 {
		t.Errorf("flood disconnects counted %d, want 1", got)
	}
}

// A client that backs off after rate_limited is not closed.
func TestBackingOffIsNotAFlood(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := hub.New(hub.Config{Now: clk.Now, Limits: hub.Limits{MessagesPerSecond: 20, MessagesBurst: 40}}, memory.New())
	tr := &closingTransport{}
	s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for range 10 { // 10s: a burst over the limit, then 2s of quiet
		for range 50 {
			s.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Message: "x"})
		}
		clk.advance(2 * time.Second)
	}
	waitFor(t, "the answers", func() bool { return tr.count("error rate_limited") >= 10 })
	if d := tr.closedWith(); d != nil {
		t.Errorf("closed with %+v, want open", d)
	}
}

// Joins have their own rate; the per-user rate is shared by a user's
// connections.
func TestJoinAndUserRates(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := hub.New(hub.Config{Now: clk.Now, MaxRooms: 1000, Limits: hub.Limits{JoinsPerSecond: 10, MessagesPerSecond: 100, MessagesBurst: 100, UserMessagesPerSecond: 5}}, memory.New())
	a, b := &closingTransport{}, &closingTransport{}
	sa, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, a)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close(ctx)
	sb, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, b)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	for i := range 30 {
		sa.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: fmt.Sprintf("r%d", i)})
	}
	waitFor(t, "join answers", func() bool { return a.count("error rate_limited") == 10 })
	if n := a.count("room_joined"); n != 20 {
		t.Errorf("joined %d rooms in an instant, want the burst of 20", n)
	}
	// The user's bucket holds 10 (twice 5/s), whichever connection sends.
	for range 8 {
		sa.Handle(ctx, hub.Command{Kind: hub.CmdPrivateMessage, TargetUser: "nobody", Message: "x"})
		sb.Handle(ctx, hub.Command{Kind: hub.CmdPrivateMessage, TargetUser: "nobody", Message: "x"})
	}
	waitFor(t, "private answers", func() bool { return a.count("private_sent")+b.count("private_sent") == 10 })
	waitFor(t, "user rate answers", func() bool { return b.count("error rate_limited") > 0 })
}

// A frame whose id is over the bound is refused, and the id not echoed.
func TestLongIDIsRefused(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	tr, other := &closingTransport{}, &closingTransport{}
	s, _ := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, tr)
	defer s.Close(ctx)
	o, _ := h.Open(ctx, hub.Identity{UserID: "o", Name: "o"}, other)
	defer o.Close(ctx)
	s.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Message: "x", ID: strings.Repeat("i", 60_000)})
	s.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Message: "x", ID: strings.Repeat("i", 64)})
	waitFor(t, "answers", func() bool { return tr.count("error id_too_long ") == 1 && tr.count("message") == 1 })
	waitFor(t, "the other member", func() bool { return other.count("message") == 1 })
}

// Connections over the per-user, per-IP and per-node counts are refused
// with CodeTooManyConns; closing one makes room again.
func TestConnectionCounts(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{Limits: hub.Limits{ConnsPerUser: 2, ConnsPerIP: 3, ConnsPerNode: 4}}, memory.New())
	connect := func(user, ip string) (*hub.Session, error) {
		return h.Open(hub.WithPeerIP(ctx, ip), hub.Identity{UserID: user, Name: user}, &closingTransport{})
	}
	refused := func(what string, err error, want string) {
		t.Helper()
		var he *hub.Error
		if !errors.As(err, &he) || he.Code != hub.CodeTooManyConns || !strings.Contains(he.Message, want) {
			t.Errorf("%s: got %v, want %s refused mentioning %q", what, err, hub.CodeTooManyConns, want)
		}
	}
	a1, _ := connect("alice", "10.0.0.1")
	if _, err := connect("alice", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, err := connect("alice", "10.0.0.2")
	refused("third of a user", err, "a user may open at most 2")
	if _, err := connect("bob", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, err = connect("carol", "10.0.0.1")
	refused("fourth of an address", err, "an address may open at most 3")
	if _, err := connect("carol", "10.0.0.3"); err != nil {
		t.Fatal(err)
	}
	_, err = connect("dave", "10.0.0.4")
	refused("fifth of the node", err, "this server holds its limit of 4")
	a1.Close(ctx)
	if _, err := connect("alice", "10.0.0.1"); err != nil {
		t.Errorf("after one closed: %v, want admitted", err)
	}
	m := &h.Metrics().Limits
	if m.RefusedUser.Load() != 1 || m.RefusedIP.Load() != 1 || m.RefusedNode.Load() != 1 {
		t.Errorf("refusals counted user %d ip %d node %d, want 1 each", m.RefusedUser.Load(), m.RefusedIP.Load(), m.RefusedNode.Load())
	}
}

// TestBannedOpenReleasesItsCount checks that a session refused for a ban
// gives back its place in the connection counts: a banned user retrying
// must not fill the per-user cap, so that once unbanned they can connect.
func TestBannedOpenReleasesItsCount(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{Limits: hub.Limits{ConnsPerUser: 1}}, memory.New())
	var frames, writes atomic.Int64
	open := func() (*hub.Session, error) {
		return h.Open(ctx, hub.Identity{UserID: "ana", Name: "ana"}, &countingTransport{enc: textEncoder{}, frames: &frames, writes: &writes})
	}
	if _, err := h.Ban(ctx, hub.Ban{User: "ana", Reason: "test", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var banned *hub.BannedError
		if _, err := open(); !errors.As(err, &banned) {
			t.Fatalf("open while banned: got %v, want a BannedError", err)
		}
	}
	if _, err := h.Unban(ctx, "ana", ""); err != nil {
		t.Fatal(err)
	}
	s, err := open()
	if err != nil {
		t.Fatalf("open after the unban: got %v, want a session", err)
	}
	s.Close(ctx)
}

// Within a run of refusals a connection's messages are all refused, a
// token that came back meanwhile notwithstanding: the first one refused,
// sent again once the run is over, is not overtaken by a later one. The
// run ends a second (breachGap) after the last refusal.
func TestARunOfRefusalsKeepsTheSendersOrder(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := hub.New(hub.Config{Now: clk.Now, Limits: hub.Limits{MessagesPerSecond: 10, MessagesBurst: 2}}, memory.New())
	tr := &closingTransport{}
	s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	send := func(id string) { s.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Message: id, ID: id}) }
	send("m1")
	send("m2")
	send("m3")                          // over the burst: refused
	clk.advance(500 * time.Millisecond) // five tokens back, but within the run
	send("m4")
	waitFor(t, "answers", func() bool { return tr.count("error rate_limited") == 2 })
	clk.advance(1100 * time.Millisecond) // the run is over
	send("m3")
	send("m4")
	waitFor(t, "the resends", func() bool { return tr.count("message") == 4 })
	if got := tr.count("error rate_limited"); got != 2 {
		t.Errorf("%d refusals, want 2: m3 in the burst's place, m4 within its run", got)
	}
}
