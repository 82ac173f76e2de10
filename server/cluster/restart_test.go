package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/bridge"
	client "github.com/tertulia/tertulia/clients/go"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// restart stops node i (a lame-duck shutdown: its clients are told, spread
// over its window, to go elsewhere) and starts a new node in its place, on
// the same addresses, with a broker of its own.
func (c *cluster) restart(t *testing.T, i int) {
	t.Helper()
	old := c.nodes[i]
	old.Stop(t)
	cfg := old.Config
	cfg.Broker = c.broker(t)
	c.nodes[i] = nodetest.StartOn(t, cfg, old.GRPCAddr, old.HTTPAddr)
}

// member is one Reconnecting client of the rolling-restart test, and what
// it has read.
type member struct {
	name, room string
	r          *client.Reconnecting

	mu   sync.Mutex     // protects seen
	seen map[string]int // "sender:k" -> times read
	last map[string]int // sender -> the last k read from it
	bad  []string       // what came twice or out of order
}

// read collects the member's room messages until its events end.
func (m *member) read() {
	for f := range m.r.Events() {
		if msg := f.GetMessage(); msg.GetRoom() == m.room {
			m.record(msg.GetMessage())
		}
	}
}

// record notes one room message, "sender:k", and whether it came twice or
// out of the sender's order.
func (m *member) record(text string) {
	sender, ks, ok := strings.Cut(text, ":")
	k, err := strconv.Atoi(ks)
	if !ok || err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[text]++
	if n := m.seen[text]; n > 1 {
		m.bad = append(m.bad, fmt.Sprintf("%s read %d times", text, n))
	}
	if last, ok := m.last[sender]; ok && k <= last {
		m.bad = append(m.bad, fmt.Sprintf("%s after %s:%d", text, sender, last))
	}
	m.last[sender] = k
}

// pending is how many of m's own frames its client still holds unacknowledged
// (0 for a browser).
func (m *member) pending() int {
	if m.r == nil {
		return 0
	}
	return m.r.Pending()
}

// missing lists the messages of sent (sender -> count) that m has not read.
func (m *member) missing(sent map[string]int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for sender, n := range sent {
		for k := range n {
			if m.seen[fmt.Sprintf("%s:%d", sender, k)] == 0 {
				out = append(out, fmt.Sprintf("%s:%d", sender, k))
			}
		}
	}
	return out
}

// The rolling restart of DESIGN.md's Operations: three nodes on a real
// Redis, clients of both transports spread over them chatting in two
// rooms, every node restarted one after the other while they chat. Every
// message sent during the restarts reaches every member of its room
// exactly once, in order: the clients reconnect to another node with
// jitter, join again with since, and (gRPC) send again what was not
// acknowledged, under the same id; the browsers hear 1012.
func TestRollingRestartLosesNothing(t *testing.T) {
	c := startClusterTimed(t, 0, steadyHeartbeat, steadyTTL)
	for range 3 {
		c.addNodeWith(t, node.Config{AllowAnonymous: true, ShutdownSpread: 300 * time.Millisecond, Limits: nodetest.Unlimited()})
	}
	addrs := []string{c.nodes[0].GRPCAddr, c.nodes[1].GRPCAddr, c.nodes[2].GRPCAddr}
	rooms := []string{"tapas", "cañas"}
	const perRoom = 3   // gRPC members, who chat
	const wsPerRoom = 2 // WebSocket members, who read
	var members []*member
	for i := range 2 * perRoom {
		name := fmt.Sprintf("m%d", i)
		// Each starts on a node of its own, and tries the others in turn.
		order := append(append([]string{}, addrs[i%3:]...), addrs[:i%3]...)
		r, err := client.Reconnect(context.Background(), order, client.WithToken(c.nodes[0].Token(t, name, false)),
			client.WithBackoff(client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
		if err != nil {
			t.Fatal(err)
		}
		m := &member{name: name, room: rooms[i%2], r: r, seen: make(map[string]int), last: make(map[string]int)}
		members = append(members, m)
		t.Cleanup(func() { r.Close() })
		if err := r.Join(t.Context(), m.room); err != nil {
			t.Fatal(err)
		}
	}
	var readers sync.WaitGroup
	for _, m := range members {
		readers.Go(m.read)
	}
	var browsers []*wsMember
	for i := range 2 * wsPerRoom {
		name := fmt.Sprintf("w%d", i)
		var order []string
		for k := range c.nodes {
			order = append(order, c.nodes[(i+k)%3].HTTPAddr)
		}
		m := &member{name: name, room: rooms[i%2], seen: make(map[string]int), last: make(map[string]int)}
		w := startWSMember(m, order, c.nodes[0].Token(t, name, false))
		browsers = append(browsers, w)
		t.Cleanup(w.close)
	}
	// Everyone is in before anyone speaks: each joiner's room_joined is
	// read by the others too.
	eventually(t, 2*waitTimeout, "every member in its room", func() bool {
		stats, err := c.nodes[0].Node.Hub().Stats(context.Background())
		return err == nil && stats.Rooms[rooms[0]] == perRoom+wsPerRoom && stats.Rooms[rooms[1]] == perRoom+wsPerRoom
	})

	stop := make(chan struct{})
	sent := make([]int, len(members))
	var senders sync.WaitGroup
	for i, m := range members {
		senders.Go(func() {
			tick := time.NewTicker(25 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if err := m.r.Send(t.Context(), m.room, fmt.Sprintf("%s:%d", m.name, k)); err != nil {
					t.Errorf("%s: send %d: %v", m.name, k, err)
					return
				}
				sent[i] = k + 1
			}
		})
	}
	for i := range c.nodes {
		time.Sleep(200 * time.Millisecond) // chat on the restarted cluster a little
		c.restart(t, i)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	senders.Wait()

	want := make(map[string]map[string]int) // room -> sender -> messages sent
	for i, m := range members {
		if want[m.room] == nil {
			want[m.room] = make(map[string]int)
		}
		want[m.room][m.name] = sent[i]
	}
	readersOf := append([]*member{}, members...)
	for _, w := range browsers {
		readersOf = append(readersOf, w.member)
	}
	for _, m := range readersOf {
		if !within(4*waitTimeout, func() bool { return len(m.missing(want[m.room])) == 0 }) {
			miss := m.missing(want[m.room])
			slices.Sort(miss)
			t.Fatalf("%s never read %d messages of %s: %v (pending on m's own client: %d)", m.name, len(miss), m.room, miss, m.pending())
		}
	}
	for _, w := range browsers {
		w.close()
		codes := w.closeCodes()
		if len(codes) == 0 {
			t.Errorf("%s: no close frame over three restarts, want 1012", w.name)
		}
		for _, code := range codes {
			if code != bridge.StatusServiceRestart {
				t.Errorf("%s: closed with %d, want 1012", w.name, code)
			}
		}
	}
	reconnects := 0
	for _, m := range members {
		reconnects += m.r.Reconnects()
		if p := m.r.Pending(); p != 0 {
			t.Errorf("%s: %d messages never acknowledged", m.name, p)
		}
		m.r.Close()
	}
	readers.Wait()
	for _, m := range readersOf {
		if miss := m.missing(want[m.room]); len(miss) > 0 {
			t.Errorf("%s never read %d messages of %s: %v", m.name, len(miss), m.room, miss)
		}
		if len(m.bad) > 0 {
			t.Errorf("%s read %d messages more than once or out of order: %v", m.name, len(m.bad), m.bad)
		}
	}
	if reconnects < len(members) {
		t.Errorf("%d reconnects in all over three restarts, want every member to have moved at least once", reconnects)
	}
	t.Logf("%d messages per member sent, %d reconnects", sent, reconnects)
}

// Private messages sent to a user while its node restarts reach it once
// each: the missed ones through recover_private on its next node.
func TestPrivateMessagesAcrossARestart(t *testing.T) {
	c := startClusterTimed(t, 0, steadyHeartbeat, steadyTTL)
	for range 3 {
		c.addNodeWith(t, node.Config{AllowAnonymous: true, ShutdownSpread: 100 * time.Millisecond, Limits: nodetest.Unlimited()})
	}
	alice, err := client.Reconnect(context.Background(), []string{c.nodes[0].GRPCAddr, c.nodes[1].GRPCAddr},
		client.WithToken(c.nodes[0].Token(t, "alice", false)),
		client.WithBackoff(client.Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	seen := make(map[string]int)
	var mu sync.Mutex
	read := make(chan struct{})
	go func() {
		defer close(read)
		for f := range alice.Events() {
			if p := f.GetPrivateMessage(); p != nil {
				mu.Lock()
				seen[p.GetMessage()]++
				mu.Unlock()
			}
		}
	}()
	eventually(t, waitTimeout, "alice connected", func() bool { return alice.Addr() != "" })

	bob := connect(t, c.nodes[2], "bob", false)
	stop := make(chan struct{})
	sent := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := bob.s.Private("alice", fmt.Sprintf("p%d", k)); err != nil {
				t.Errorf("bob: private %d: %v", k, err)
				return
			}
			sent = k + 1
		}
	}()
	time.Sleep(200 * time.Millisecond)
	c.restart(t, 0)
	eventually(t, waitTimeout, "alice back", func() bool { return alice.Reconnects() == 1 && alice.Addr() != "" })
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-done
	eventually(t, 2*waitTimeout, "alice reads every private message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k := range sent {
			if seen[fmt.Sprintf("p%d", k)] == 0 {
				return false
			}
		}
		return true
	})
	alice.Close()
	<-read
	for text, n := range seen {
		if n != 1 {
			t.Errorf("alice read %s %d times, want once", text, n)
		}
	}
	t.Logf("%d private messages across the restart", sent)
}
