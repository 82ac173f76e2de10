package cluster_test

import (
	"github.com/tertulia/tertulia/server/logs/logstest"

	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// buildTertulia builds the tertulia command into a temporary directory.
func buildTertulia(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tertulia")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tertulia/tertulia/server/cmd/tertulia").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a tertulia command running beside the test.
type process struct {
	cmd  *exec.Cmd
	logs *logstest.Buffer
	done chan struct{} // closed once it has exited
}

// run starts bin serving on loopback :0 ports in the test cluster's Redis,
// with the cluster's presence timings; extra flags are appended.
func (c *cluster) run(t *testing.T, bin string, extra ...string) *process {
	t.Helper()
	url := fmt.Sprintf("%s?prefix=%s&heartbeat=%s&presence_ttl=%s", c.redis.URL(), c.prefix, c.heartbeat, c.ttl)
	args := append([]string{"serve", "--broker", "redis", "--redis-url", url, "--jwt-secret", string(nodetest.Secret),
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		// The tests poll with messages faster than a person types.
		"--limit-messages-per-second", "0", "--limit-user-messages-per-second", "0"}, extra...)
	p := &process{cmd: exec.Command(bin, args...), logs: &logstest.Buffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start tertulia: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(t) })
	return p
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		t.Errorf("tertulia did not exit within %v of SIGKILL", waitTimeout)
	}
}

var servingRE = regexp.MustCompile(`msg=serving .*grpc=(\S+)`)

// grpcAddr waits for the "serving" log line and returns its gRPC address.
func (p *process) grpcAddr(t *testing.T, within time.Duration) string {
	t.Helper()
	var addr string
	eventually(t, within, "tertulia serving", func() bool {
		if m := servingRE.FindStringSubmatch(p.logs.String()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case <-p.done:
			t.Fatalf("tertulia exited: %s", p.logs.String())
		default:
		}
		return false
	})
	return addr
}

// tokenFor returns a token for user signed with nodetest.Secret, the secret
// of every node of a test cluster.
func tokenFor(t *testing.T, user string) string {
	t.Helper()
	a, err := auth.New(auth.Config{Secret: nodetest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Issue(user, false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func users(t *testing.T, u *user) []string {
	t.Helper()
	got, err := u.c.Users(context.Background())
	if err != nil {
		t.Fatalf("users: %v", err)
	}
	return got
}

// A node killed with SIGKILL says no goodbye; its users leave the cluster's
// presence within testTTL + testHeartbeat, and the others are told.
func TestKilledNodeExpires(t *testing.T) {
	bin := buildTertulia(t)
	cl := startClusterTimed(t, 1, testHeartbeat, testTTL)
	bob := connect(t, cl.nodes[0], "bob", false)
	p := cl.run(t, bin)
	alice := connectAddr(t, p.grpcAddr(t, 10*time.Second), tokenFor(t, "alice"), "alice")
	alice.join("lounge")
	bob.await("alice's user_joined", func(f *chatv1.ServerFrame) bool { return f.GetUserJoined().GetUserId() == "alice" })
	if got := users(t, bob); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("users before the kill: got %q, want [alice bob]", got)
	}

	p.kill(t)
	bound := testTTL + testHeartbeat
	took := eventually(t, waitTimeout, "alice leaves users", func() bool { return slices.Equal(users(t, bob), []string{"bob"}) })
	t.Logf("presence of the killed node expired %v after SIGKILL (bound %v after its last heartbeat)", took.Round(time.Millisecond), bound)
	// The poll and the RPC add a little; a slow machine under -race more.
	if took > bound+500*time.Millisecond {
		t.Errorf("expiry took %v, want within %v (+0.5s of slack)", took, bound)
	}
	st, err := bob.c.Stats(context.Background())
	if err != nil || st.TotalConnections != 1 || len(st.Rooms) != 0 {
		t.Errorf("stats after expiry: got %+v, %v; want bob's connection alone, no rooms", st, err)
	}
	bob.await("alice's user_left", func(f *chatv1.ServerFrame) bool { return f.GetUserLeft().GetUserId() == "alice" })
}

// Redis stops while people chat, then comes back empty: each node keeps its
// own sessions talking in the lobby meanwhile, room messages (which live in
// Redis's logs) are refused as unavailable rather than lost, and afterwards
// cross-node delivery and presence resume without restarting any node.
func TestRedisRestartWhileChatting(t *testing.T) {
	cl := startCluster(t, 2)
	alice, dora := connect(t, cl.nodes[0], "alice", false), connect(t, cl.nodes[0], "dora", false)
	bob := connect(t, cl.nodes[1], "bob", false)
	for _, u := range []*user{alice, dora, bob} {
		u.join("lounge")
	}
	alice.must(alice.s.Send("lounge", "before"))
	bob.await("before", isMessage("before"))

	cl.redis.Stop(t)
	alice.must(alice.s.Send("lounge", "lost"))
	alice.await("unavailable error", func(f *chatv1.ServerFrame) bool { return f.GetError().GetCode() == "unavailable" })
	alice.must(alice.s.Send("", "during"))
	dora.await("alice's lobby message while redis is away", isMessage("during"))
	// What needs the cluster's presence is refused meanwhile, clearly.
	dora.must(dora.s.Join("den"))
	dora.await("unavailable error", func(f *chatv1.ServerFrame) bool { return f.GetError().GetCode() == "unavailable" })
	refusedConnect(t, cl.nodes[0].GRPCAddr, tokenFor(t, "erin"))

	cl.redis.Restart(t)
	start := time.Now()
	resumed := false
	for i := 0; i < 200 && !resumed; i++ {
		alice.must(alice.s.Send("lounge", fmt.Sprintf("probe %d", i)))
		_, resumed = bob.poll(50*time.Millisecond, func(f *chatv1.ServerFrame) bool {
			if m := f.GetMessage().GetMessage(); m == "during" || m == "lost" {
				t.Errorf("bob got %q, sent while redis was away; want it lost to other nodes", m)
			}
			return strings.HasPrefix(f.GetMessage().GetMessage(), "probe")
		})
	}
	if !resumed {
		t.Fatalf("cross-node delivery did not resume within 200 probes")
	}
	t.Logf("cross-node delivery resumed %v after redis restarted", time.Since(start).Round(time.Millisecond))
	bob.must(bob.s.Send("lounge", "after"))
	alice.await("bob's message after the restart", isMessage("after"))

	// Redis came back empty: both nodes subscribed again, and register their
	// sessions again.
	rdb := goredis.NewClient(&goredis.Options{Addr: cl.redis.Addr})
	defer rdb.Close()
	subs, err := rdb.PubSubNumSub(context.Background(), cl.prefix+":room:lounge", cl.prefix+":lobby").Result()
	if err != nil || subs[cl.prefix+":room:lounge"] != 2 || subs[cl.prefix+":lobby"] != 2 {
		t.Errorf("subscribers after the restart: got %v, %v; want both nodes on lounge and lobby", subs, err)
	}
	eventually(t, waitTimeout, "presence registered again", func() bool {
		st, err := bob.c.Stats(context.Background())
		return err == nil && st.TotalConnections == 3 && st.UniqueUsers == 3 && st.Rooms["lounge"] == 3
	})
}

// refusedConnect checks that a new session is refused with Unavailable.
func refusedConnect(t *testing.T, addr, token string) {
	t.Helper()
	c, err := client.Dial(addr, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.Connect(ctx)
	if err == nil {
		defer s.Close()
		for f := range s.Events() {
			t.Errorf("got frame %v, want the session refused", f)
		}
		err = s.Err()
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("connect while redis is away: got %v, want Unavailable", err)
	}
}

// Redis unreachable at start: the node logs each failed attempt, retries
// with backoff, and serves once Redis appears.
func TestNodeWaitsForRedisAtStart(t *testing.T) {
	bin := buildTertulia(t)
	cl := startCluster(t, 0)
	cl.redis.Stop(t)
	p := cl.run(t, bin)
	eventually(t, waitTimeout, "a retry logged", func() bool { return strings.Contains(p.logs.String(), "redis unreachable; retrying") })
	cl.redis.Restart(t)
	addr := p.grpcAddr(t, 10*time.Second)
	u := connectAddr(t, addr, tokenFor(t, "erin"), "erin")
	u.must(u.s.Send("", "up"))
	u.await("own lobby message", isMessage("up"))

	// A graceful stop: SIGTERM, then the node leaves presence on its own.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("tertulia did not stop on SIGTERM; log:\n%s", p.logs.String())
	}
}

// A node stopped gracefully takes its sessions with it; users on the other
// nodes are told who left, and presence forgets them at once.
func TestStoppedNodeUsersLeave(t *testing.T) {
	cl := startCluster(t, 2)
	bob := connect(t, cl.nodes[1], "bob", false)
	connect(t, cl.nodes[0], "alice", false).join("lounge")
	bob.await("alice's user_joined", func(f *chatv1.ServerFrame) bool { return f.GetUserJoined().GetUserId() == "alice" })

	cl.nodes[0].Stop(t)
	bob.await("alice's user_left", func(f *chatv1.ServerFrame) bool { return f.GetUserLeft().GetUserId() == "alice" })
	if got := users(t, bob); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("users after node A stopped: got %q, want [bob]", got)
	}
}
