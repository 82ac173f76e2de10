package load

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tertulia/tertulia/server/auth"
)

// Result is what one run measured. Durations are in milliseconds so that the
// JSON line reads without conversion.
type Result struct {
	Scenario  string `json:"scenario"`
	Transport string `json:"transport"`
	Client    string `json:"client,omitempty"` // ws only: own or coder
	Conns     int    `json:"conns"`
	Rooms     int    `json:"rooms,omitempty"`
	// TargetRate is the publishing rate asked for, Config.Rate: in all for
	// fanout, churn and reconnect, per member for rooms. Rate is the rate
	// achieved, in the same unit: the messages published over the
	// publishing time plus one interval at the target rate, so that a
	// publisher on time reports the target. Below 95% of the target, Run
	// warns (Config.Warnings): the figures are those of a lighter load.
	TargetRate float64 `json:"target_rate_per_s,omitempty"`
	Rate       float64 `json:"rate_per_s,omitempty"`
	// Seconds is the publishing time (idle: the holding time).
	Seconds float64 `json:"seconds"`

	Published int64 `json:"published,omitempty"`
	// Expected is, summed over the subscribers, the messages each should
	// have received: every message published to its room that the server
	// did not refuse. Delivered is the distinct messages they received
	// (each subscriber's first copy of each message).
	Expected  int64 `json:"expected,omitempty"`
	Delivered int64 `json:"delivered,omitempty"`
	// DeliveredSec is Delivered over the window the deliveries were
	// counted in: from the first publish to the last delivery, whether or
	// not some never came (those are Lost).
	DeliveredSec float64 `json:"delivered_per_s,omitempty"`
	// Refused is how many published messages the server refused with an
	// unavailable error (its broker was away): their senders were told, so
	// they are neither expected nor lost. Lost and Extra are counted
	// subscriber by subscriber, each one's messages told apart by publisher
	// and sequence number, and summed: Lost is the messages a subscriber
	// should have received and did not, Extra the copies of messages it
	// had already received (duplicates). One subscriber's duplicate does
	// not make up for another's loss: a run is clean only with both 0.
	Refused     int64   `json:"refused"`
	Lost        int64   `json:"lost"`
	Extra       int64   `json:"extra"`
	P50         float64 `json:"p50_ms,omitempty"`
	P90         float64 `json:"p90_ms,omitempty"`
	P99         float64 `json:"p99_ms,omitempty"`
	Max         float64 `json:"max_ms,omitempty"`
	Dropped     int     `json:"dropped"`
	ChurnCycles int64   `json:"churn_cycles,omitempty"`
	ChurnFailed int64   `json:"churn_failed,omitempty"`

	// ServerWrites is the server's write system calls while measuring;
	// FramesPerWrite is the messages read (Delivered + Extra) over it
	// (those writes also carry the publisher's own copies and other
	// frames, so it is slightly understated).
	ServerWrites   int64   `json:"server_writes,omitempty"`
	FramesPerWrite float64 `json:"frames_per_write,omitempty"`

	// ToolCPUPerMsg and ServerCPUPerMsg are the CPU time each process
	// spent over the measured phase divided by the messages read
	// (Delivered + Extra), in microseconds:
	// what one delivered message costs the client (all of the tool's
	// connections, the publisher included) and the server.
	ToolCPUPerMsg   float64 `json:"tool_cpu_per_msg_us,omitempty"`
	ServerCPUPerMsg float64 `json:"server_cpu_per_msg_us,omitempty"`

	// Connected is how many connections the set-up opened and joined; below
	// Conns only if it failed or ran out of time.
	Connected  int     `json:"connected"`
	ConnectSec float64 `json:"connect_per_s,omitempty"`
	// SetupServerCPU and SetupToolCPU are how busy each side was while the
	// idle scenario set its connections up, or while the reconnect storm
	// reconnected them (100% = one core): which of the two bounds the rate.
	SetupServerCPU float64 `json:"setup_server_cpu_pct,omitempty"`
	SetupToolCPU   float64 `json:"setup_tool_cpu_pct,omitempty"`
	// SetupServerCPUPerConn and SetupToolCPUPerConn are the CPU time each
	// side spent on that set-up divided by the connections set up, in
	// microseconds.
	SetupServerCPUPerConn float64 `json:"setup_server_cpu_per_conn_us,omitempty"`
	SetupToolCPUPerConn   float64 `json:"setup_tool_cpu_per_conn_us,omitempty"`
	ServerCPU             float64 `json:"server_cpu_pct,omitempty"`
	ToolCPU               float64 `json:"tool_cpu_pct"`
	ServerRSSMiB          float64 `json:"server_rss_mib,omitempty"`
	ServerRSSConn         float64 `json:"server_rss_per_conn_kib,omitempty"`
	ToolRSSConnKiB        float64 `json:"tool_rss_per_conn_kib,omitempty"`

	// The reconnect storm: how long closing every connection at once took,
	// then how long until every one had reconnected and re-joined, how many
	// never did and how many retries they took. With Config.Restart,
	// ReconnectSec runs from the start of the restart, which ends the
	// connections, and RestartSec is how long until the new server was
	// serving (by the tool's count: it started in the storm).
	StormCloseSec    float64 `json:"storm_close_s,omitempty"`
	RestartSec       float64 `json:"restart_s,omitempty"`
	ReconnectSec     float64 `json:"reconnect_s,omitempty"`
	ReconnectFailed  int64   `json:"reconnect_failed,omitempty"`
	ReconnectRetries int64   `json:"reconnect_retries,omitempty"`

	// FirstDrop is why the first dropped connection ended, if one did.
	FirstDrop string `json:"first_drop,omitempty"`

	// Hist holds the latencies, for the SVG.
	Hist *Histogram `json:"-"`
}

// Run carries out one scenario against a running server and reports what it
// measured. It stops early, with what it has, if ctx is cancelled; every
// connection it opened is closed before it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Each connection is one file here, plus a few for the process itself.
	if err := raiseFileLimit(cfg.Conns + 64); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, hist: new(Histogram), serverPID: cfg.ServerPID}
	if err := r.setupDialer(); err != nil {
		return nil, err
	}
	defer r.closeAll()
	res := &Result{Scenario: cfg.Scenario, Transport: cfg.Transport, Conns: cfg.Conns, Hist: r.hist}
	if cfg.Transport == "ws" {
		res.Client = cfg.Client
	}
	var err error
	switch cfg.Scenario {
	case "fanout":
		err = r.fanout(ctx, res, false)
	case "churn":
		err = r.fanout(ctx, res, true)
	case "rooms":
		err = r.rooms(ctx, res)
	case "idle":
		err = r.idle(ctx, res)
	case "reconnect":
		err = r.reconnect(ctx, res)
	}
	res.Connected = r.connected()
	res.Dropped, res.FirstDrop = r.dropped()
	return res, err
}

// runner holds one run's connections.
type runner struct {
	cfg  Config
	hist *Histogram
	d    dialer
	pubd dialer // the publisher's node: d unless the publisher is elsewhere
	// serverPID is the server's process whose CPU and RSS are read:
	// Config.ServerPID until a restart of the storm starts another. Set by
	// the scenario's goroutine only.
	serverPID int

	mu      sync.Mutex // protects clients
	clients []*client
}

// client is one open connection and what the tool knows of it.
type client struct {
	c conn
	m *member
}

func (r *runner) setupDialer() error {
	tokens := func(string) (string, error) { return r.cfg.Token, nil }
	if len(r.cfg.JWTSecret) > 0 {
		a, err := auth.New(auth.Config{Secret: r.cfg.JWTSecret, TTL: 24 * time.Hour})
		if err != nil {
			return fmt.Errorf("token signer: %w", err)
		}
		var mu sync.Mutex
		cache := make(map[string]string)
		tokens = func(user string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			if t, ok := cache[user]; ok {
				return t, nil
			}
			t, err := a.Issue(user, false)
			if err != nil {
				return "", fmt.Errorf("sign token for %s: %w", user, err)
			}
			cache[user] = t
			return t, nil
		}
		// Sign the set-up's tokens now, before anything is timed: signing
		// is the deployment's identity provider's work, not the client's.
		for i := range min(r.cfg.Users, r.cfg.Conns) {
			if _, err := tokens(r.user(i)); err != nil {
				return err
			}
		}
		if _, err := tokens(r.named("pub")); err != nil {
			return err
		}
	}
	switch {
	case r.cfg.Protocol == "centrifugo":
		r.d, r.pubd = newCentrifugoDialer(r.cfg.HTTPAddr, tokens), newCentrifugoDialer(r.cfg.PubHTTPAddr, tokens)
	case r.cfg.Transport == "ws" && r.cfg.Client == "coder":
		r.d = newCoderDialer(r.cfg.HTTPAddr, tokens)
		r.pubd = newCoderDialer(r.cfg.PubHTTPAddr, tokens)
	case r.cfg.Transport == "ws":
		r.d = newWSDialer(r.cfg.HTTPAddr, tokens, r.cfg.OfferProtocol).overTLS(r.cfg.TLS)
		r.pubd = newWSDialer(r.cfg.PubHTTPAddr, tokens, r.cfg.OfferProtocol).overTLS(r.cfg.TLS)
	case r.cfg.Transport == "grpc":
		r.d = &grpcDialer{addr: r.cfg.GRPCAddr, perConn: r.cfg.StreamsPerConn, tokens: tokens}
		r.pubd = &grpcDialer{addr: r.cfg.PubGRPCAddr, perConn: r.cfg.StreamsPerConn, tokens: tokens}
	}
	return nil
}

// user names connection i's user; "" (a guest) without any credentials.
func (r *runner) user(i int) string {
	if len(r.cfg.JWTSecret) == 0 && r.cfg.Token == "" {
		return ""
	}
	return "u" + strconv.Itoa(i%r.cfg.Users)
}

// open dials one connection, joins room (unless it is "" or the lobby "-")
// and waits for the join to be acknowledged.
func (r *runner) open(ctx context.Context, user, room, joinID string, hist *Histogram) (*client, error) {
	return r.openOn(ctx, r.d, user, room, joinID, hist)
}

// openOn is open through dialer d.
func (r *runner) openOn(ctx context.Context, d dialer, user, room, joinID string, hist *Histogram) (*client, error) {
	if room == "-" {
		room = ""
	}
	if room == "" {
		joinID = ""
	}
	m := newMember(hist, joinID)
	c, err := d.dial(ctx, user, room, joinID, m)
	if err != nil {
		return nil, err
	}
	return &client{c: c, m: m}, nil
}

// openMany opens n connections, Dialers at a time; connection i joins
// roomOf(i). It returns how long that took. The connections are kept in
// r.clients, in order, from index first on.
func (r *runner) openMany(ctx context.Context, n int, roomOf func(i int) string) (time.Duration, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.SetupTimeout,
		fmt.Errorf("set-up of %d connections took over %v", n, r.cfg.SetupTimeout))
	defer cancel()
	first := len(r.clients)
	r.clients = append(r.clients, make([]*client, n)...)
	start := time.Now()
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(r.cfg.Dialers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				cl, err := r.open(ctx, r.user(i), roomOf(i), "j"+strconv.Itoa(i), r.hist)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d of %d: %w", i+1, n, err); cancel() })
					return
				}
				r.mu.Lock()
				r.clients[first+i] = cl
				r.mu.Unlock()
				if done := i + 1; done%1000 == 0 {
					fmt.Fprintf(r.cfg.Progress, "  %d/%d connected\n", done, n)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = context.Cause(ctx)
	}
	return took, firstErr
}

// setUp opens the run's Conns connections, connection i joining roomOf(i),
// and reports in res how fast that went, or how far it got if it failed.
func (r *runner) setUp(ctx context.Context, res *Result, roomOf func(i int) string) error {
	took, err := r.openMany(ctx, r.cfg.Conns, roomOf)
	if took > 0 {
		res.ConnectSec = float64(r.connected()) / took.Seconds()
	}
	return err
}

// closeAll closes every connection, Dialers at a time.
func (r *runner) closeAll() {
	r.mu.Lock()
	cls := r.clients
	r.clients = nil
	r.mu.Unlock()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Dialers, len(cls)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cls) {
					return
				}
				if cls[i] != nil {
					cls[i].c.close()
				}
			}
		})
	}
	wg.Wait()
	closeDialers(r.d, r.pubd)
}

// closeDialers closes what the dialers keep open beside their connections
// (gRPC's HTTP/2 connections); call it once those connections are closed.
func closeDialers(ds ...dialer) {
	for _, d := range ds {
		if g, ok := d.(*grpcDialer); ok {
			g.closeAll()
		}
	}
}

// dropped counts the connections the server ended.
func (r *runner) dropped() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, first := 0, ""
	for _, cl := range r.clients {
		if cl != nil && cl.m.dropped.Load() {
			n++
			if p := cl.m.errMsg.Load(); first == "" && p != nil {
				first = *p
			}
		}
	}
	return n, first
}

// connected counts the connections of the set-up (the first Conns of
// r.clients) that were opened and joined.
func (r *runner) connected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, cl := range r.clients[:min(len(r.clients), r.cfg.Conns)] {
		if cl != nil {
			n++
		}
	}
	return n
}
