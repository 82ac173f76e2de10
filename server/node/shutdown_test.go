package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/bridge"
	client "github.com/tertulia/tertulia/clients/go"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// lameDuck is a node the test shuts down itself, and watches doing it.
type lameDuck struct {
	*nodetest.Server // for its addresses, tokens and WebSocket dialer
	node             *node.Node
	broker           *brokerLog
	cancel           context.CancelFunc
	served           chan error
}

// startLameDuck runs a node with cfg on a broker that logs presence
// removals. The test stops it with cancel; it is forced at cleanup.
func startLameDuck(t *testing.T, cfg node.Config) *lameDuck {
	t.Helper()
	cfg.JWT = auth.Config{Secret: nodetest.Secret}
	b := &brokerLog{Broker: memory.New()}
	cfg.Broker = b
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(cfg.JWT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	gl, hl := listenLocal(t), listenLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	d := &lameDuck{
		Server: &nodetest.Server{Node: n, Config: cfg, GRPCAddr: gl.Addr().String(), HTTPAddr: hl.Addr().String(), Auth: a},
		node:   n, broker: b, cancel: cancel, served: make(chan error, 1),
	}
	go func() { d.served <- n.Serve(ctx, gl, hl) }()
	t.Cleanup(func() {
		cancel()
		n.Force()
		select {
		case <-d.served:
		case <-time.After(10 * time.Second):
			t.Error("node did not stop within 10s of Force")
		}
	})
	return d
}

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// brokerLog is a broker that notes, for each presence removal, when it
// came and whether the node then already reported NOT_SERVING, and any call
// made after the node's Serve returned.
type brokerLog struct {
	hub.Broker

	mu       sync.Mutex // protects the fields below
	removed  []time.Time
	serving  []healthpb.HealthCheckResponse_ServingStatus
	health   healthpb.HealthClient // asked at each removal, if set
	returned bool                  // Serve has returned
	late     int                   // calls after that
}

func (b *brokerLog) RemoveConn(ctx context.Context, c hub.PresenceRecord) (bool, int, error) {
	b.mu.Lock()
	h := b.health
	if b.returned {
		b.late++
	}
	b.mu.Unlock()
	st := healthpb.HealthCheckResponse_UNKNOWN
	if h != nil {
		if r, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
			st = r.GetStatus()
		}
	}
	b.mu.Lock()
	b.removed = append(b.removed, time.Now())
	b.serving = append(b.serving, st)
	b.mu.Unlock()
	return b.Broker.RemoveConn(ctx, c)
}

func (b *brokerLog) Publish(ctx context.Context, topic string, ev *hub.Event) error {
	b.mu.Lock()
	if b.returned {
		b.late++
	}
	b.mu.Unlock()
	return b.Broker.Publish(ctx, topic, ev)
}

// ended is how, and when, one client saw its session end.
type ended struct {
	who  string
	at   time.Time
	desc string // what the client saw
	ok   bool   // it is what a restart should look like
}

// On SIGTERM a node first reports NOT_SERVING, then refuses new connections
// while its old ones still answer (/health 503), then ends its sessions
// spread over the window, WebSocket clients with 1012 and gRPC clients with
// Unavailable, and returns only once they have all left the broker.
func TestLameDuckShutdown(t *testing.T) {
	const perTransport = 6
	const spread = time.Second
	d := startLameDuck(t, node.Config{ShutdownSpread: spread, ShutdownTimeout: 20 * time.Second})

	// A load balancer's connections, open before the shutdown.
	health, watch := watchHealth(t, d.GRPCAddr)
	d.broker.mu.Lock()
	d.broker.health = health
	d.broker.mu.Unlock()
	web := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer web.CloseIdleConnections()
	if code, _ := getHealth(t, web, d.URL("/health")); code != http.StatusOK {
		t.Fatalf("/health before the shutdown: %d, want 200", code)
	}

	endings := make(chan ended, 2*perTransport)
	var wg sync.WaitGroup
	for i := range perTransport {
		name := fmt.Sprintf("grpc%d", i)
		s := grpcSession(t, d.Server, name)
		wg.Go(func() {
			for range s.Events() {
			}
			err := s.Err()
			endings <- ended{who: name, at: time.Now(), desc: fmt.Sprint(err),
				ok: status.Code(err) == codes.Unavailable && status.Convert(err).Message() == "service restart"}
		})
		name = fmt.Sprintf("ws%d", i)
		w := d.DialWS(t, "/api/v1/ws/authenticated?token="+d.Token(t, name, false))
		wg.Go(func() {
			w.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				_, _, err := nodetest.ReadServerData(w.Conn)
				if err == nil {
					continue
				}
				w.Conn.Close() // as a browser does after the closing handshake
				var ce wsutil.ClosedError
				endings <- ended{who: name, at: time.Now(), desc: err.Error(),
					ok: errors.As(err, &ce) && ce.Code == bridge.StatusServiceRestart && ce.Reason == "service restart"}
				return
			}
		})
	}
	if got := d.node.Hub().Sessions(); got != 2*perTransport {
		t.Fatalf("sessions before the shutdown: %d, want %d", got, 2*perTransport)
	}

	start := time.Now()
	d.cancel() // what SIGTERM does
	watch(healthpb.HealthCheckResponse_NOT_SERVING)
	for _, addr := range []string{d.GRPCAddr, d.HTTPAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("a new connection to %s was accepted during the shutdown, want it refused", addr)
		}
	}
	code, body := getHealth(t, web, d.URL("/health"))
	if code != http.StatusServiceUnavailable || body["status"] != "shutting_down" {
		t.Errorf("/health on an open connection during the shutdown: %d %v, want 503 {status: shutting_down}", code, body)
	}

	select {
	case err := <-d.served:
		d.served <- err
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return within 15s")
	}
	returned := time.Since(start)
	t.Logf("Serve returned %v after the signal", returned.Round(time.Millisecond))
	d.broker.mu.Lock()
	d.broker.returned = true
	removed, serving := d.broker.removed, d.broker.serving
	d.broker.mu.Unlock()
	wg.Wait()
	close(endings)

	var times []time.Duration
	for e := range endings {
		if !e.ok {
			t.Errorf("%s: session ended with %s, want 1012 service restart / Unavailable service restart", e.who, e.desc)
		}
		times = append(times, e.at.Sub(start))
	}
	if len(times) != 2*perTransport {
		t.Fatalf("%d sessions ended, want %d", len(times), 2*perTransport)
	}
	// The server tells one session every spread/12, never sooner: at most
	// two fit in the first tenth of the window.
	early := 0
	for _, at := range times {
		if at < spread/10 {
			early++
		}
	}
	if early > 2 {
		t.Errorf("%d of %d sessions ended in the first tenth of the %v window, want at most 2: %v", early, len(times), spread, times)
	}
	if len(removed) != 2*perTransport {
		t.Errorf("Serve returned after %d sessions left the broker, want all %d", len(removed), 2*perTransport)
	}
	for i, st := range serving {
		if st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("removal %d: health was %v, want NOT_SERVING before any session left", i, st)
		}
	}
	if first, last := removed[0].Sub(start), removed[len(removed)-1].Sub(start); last-first < spread/2 {
		t.Errorf("sessions left the broker from %v to %v after the signal, want them spread over about %v", first, last, spread)
	}
	if returned > spread+10*time.Second {
		t.Errorf("Serve returned %v after the signal, want soon after the %v spread", returned, spread)
	}
	time.Sleep(50 * time.Millisecond) // a straggler would have called by now
	d.broker.mu.Lock()
	if d.broker.late > 0 {
		t.Errorf("%d broker calls after Serve returned, want none: the caller closes the broker then", d.broker.late)
	}
	d.broker.mu.Unlock()
}

// Force (a second SIGTERM) ends a long spread at once.
func TestLameDuckForced(t *testing.T) {
	d := startLameDuck(t, node.Config{ShutdownSpread: time.Hour, ShutdownTimeout: 2 * time.Hour})
	var sessions []*client.Session
	for i := range 3 {
		sessions = append(sessions, grpcSession(t, d.Server, fmt.Sprintf("u%d", i)))
	}
	_, watch := watchHealth(t, d.GRPCAddr)
	d.cancel()
	watch(healthpb.HealthCheckResponse_NOT_SERVING) // the hour-long spread has begun
	d.node.Force()
	select {
	case err := <-d.served:
		d.served <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of Force")
	}
	for i, s := range sessions {
		for range s.Events() {
		}
		if status.Code(s.Err()) != codes.Unavailable {
			t.Errorf("session %d ended with %v, want Unavailable", i, s.Err())
		}
	}
}

// A timeout that does not exceed the spread is refused when the node is
// built, not at SIGTERM.
func TestShutdownTimeoutMustExceedSpread(t *testing.T) {
	_, err := node.New(node.Config{JWT: auth.Config{Secret: nodetest.Secret}, ShutdownSpread: 10 * time.Second, ShutdownTimeout: 5 * time.Second})
	if err == nil {
		t.Error("node.New with a 5s timeout and a 10s spread: no error, want one")
	}
}

// watchHealth watches the health of the node at addr. It returns a health
// client on the same connection, and a function that waits for the next
// status the watch reports and fails the test unless it is want. The first
// status, SERVING, has been read.
func watchHealth(t *testing.T, addr string) (healthpb.HealthClient, func(want healthpb.HealthCheckResponse_ServingStatus)) {
	t.Helper()
	hc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Close() })
	health := healthpb.NewHealthClient(hc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	w, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		if r, err := w.Recv(); err != nil || r.GetStatus() != want {
			t.Fatalf("health watch: %v, %v; want %v", r, err, want)
		}
	}
	next(healthpb.HealthCheckResponse_SERVING)
	return health, next
}

// grpcSession connects name over gRPC and waits for its welcome.
func grpcSession(t *testing.T, srv *nodetest.Server, name string) *client.Session {
	t.Helper()
	c, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, name, false)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case f := <-s.Events():
		if f.GetSystem() == nil {
			t.Fatalf("%s: first frame %v, want the welcome", name, f)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no welcome within %v", name, waitTimeout)
	}
	return s
}

// getHealth GETs url with c and decodes its JSON body.
func getHealth(t *testing.T, c *http.Client, url string) (int, map[string]any) {
	t.Helper()
	r, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer r.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Errorf("GET %s: body is not JSON: %v", url, err)
	}
	return r.StatusCode, body
}
