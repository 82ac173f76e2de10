package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
)

// SoakConfig describes a soak: Live connections, half over the WebSocket
// bridge and half over gRPC, each going round connect, join a room, chat,
// leave, close, as one user after another of Users distinct users, for
// Duration; the server's memory and goroutines are read before, every
// Every, and after, and must come back near their baseline (Thresholds).
// The baseline is read after a warm-up churn of the same kind: what a
// server keeps once it has served (its pools, the bridge's idle workers,
// the heap the runtime has not handed back) is not a leak; what grows
// from one churn to the next is.
// Zero values mean the documented defaults.
type SoakConfig struct {
	// HTTPAddr and GRPCAddr are the server's. Defaults 127.0.0.1:8000 and
	// 127.0.0.1:9090.
	HTTPAddr, GRPCAddr string
	// AllowRemote lets the soak target a non-loopback server.
	AllowRemote bool
	// JWTSecret signs one token per user, as the server's. Required.
	JWTSecret []byte
	// Users is how many distinct users take turns. Default 3000.
	Users int
	// Live is how many connections are open at any time. Default 1000.
	Live int
	// Rooms is how many rooms they join. Default 50.
	Rooms int
	// Hold is how long, on average, a connection stays in its room before
	// it leaves and closes (uniformly within [Hold/2, 3·Hold/2]). Default 5s.
	Hold time.Duration
	// MessageEvery is how often each connection chats while in its room.
	// Default 2s.
	MessageEvery time.Duration
	// Duration is how long the churn lasts. Default 3m; at most 1h.
	Duration time.Duration
	// Warmup is how long the churn before the baseline lasts. Default
	// 20s; negative: none, the baseline is the server as it is.
	Warmup time.Duration
	// Every is the time between samples during the churn. Default 10s.
	Every time.Duration
	// Settle is the wait between the last close and the final sample, for
	// the server to let go of what it held. Default 10s.
	Settle time.Duration
	// MetricsURL is the server's /metrics. Default http://HTTPAddr/metrics.
	MetricsURL string
	// GCURL, if set, is fetched before the baseline and the final sample
	// to run a GC in the server: its pprof heap profile with ?gc=1.
	GCURL string
	// ServerPID, if set, is the server's process: RSS is read from /proc.
	ServerPID int
	// Thresholds say how near the baseline is near enough.
	Thresholds Thresholds
	// Progress receives a line per sample and per phase. Default: discard.
	Progress io.Writer
}

// maxSoak bounds a soak's duration: it is a test, not a service.
const maxSoak = time.Hour

func (c SoakConfig) withDefaults() SoakConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8000"
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:9090"
	}
	def(&c.Users, 3000)
	def(&c.Live, 1000)
	def(&c.Rooms, 50)
	defd(&c.Hold, 5*time.Second)
	defd(&c.MessageEvery, 2*time.Second)
	defd(&c.Duration, 3*time.Minute)
	if c.Warmup == 0 {
		c.Warmup = 20 * time.Second
	}
	defd(&c.Every, 10*time.Second)
	defd(&c.Settle, 10*time.Second)
	if c.MetricsURL == "" {
		c.MetricsURL = "http://" + c.HTTPAddr + "/metrics"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

func (c SoakConfig) validate() error {
	var errs []error
	if len(c.JWTSecret) == 0 {
		errs = append(errs, errors.New("a JWT secret is required: every user has a token of its own"))
	}
	if c.Live > maxConns {
		errs = append(errs, fmt.Errorf("%d live connections is over the limit of %d", c.Live, maxConns))
	}
	if c.Duration > maxSoak {
		errs = append(errs, fmt.Errorf("duration %v is over the limit of %v", c.Duration, maxSoak))
	}
	for _, addr := range []string{c.HTTPAddr, c.GRPCAddr} {
		if err := checkLoopback(addr, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range []string{c.MetricsURL, c.GCURL} {
		if u != "" {
			if err := checkLoopbackURL(u, c.AllowRemote); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SoakResult is what a soak saw.
type SoakResult struct {
	Baseline Sample   `json:"baseline"`
	During   []Sample `json:"during"`
	Peak     Sample   `json:"peak"` // the largest of each figure during the churn
	After    Sample   `json:"after"`
	// Cycles are connections that went round connect, join, chat, leave
	// and close; Failed are those that did not, FirstFailure why.
	Cycles       int64  `json:"cycles"`
	Failed       int64  `json:"failed"`
	FirstFailure string `json:"first_failure,omitempty"`
	Sent         int64  `json:"sent"` // chat messages
	Received     int64  `json:"received"`
	// Problems lists each figure that did not come back near its
	// baseline; empty when the soak passed.
	Problems []string `json:"problems"`
}

// Soak runs a soak against a running server (see SoakConfig). The error is
// about the run itself; whether the server came back near its baseline is
// in SoakResult.Problems.
func Soak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := raiseFileLimit(cfg.Live + 64); err != nil {
		return nil, err
	}
	tokens, err := signTokens(cfg.JWTSecret, cfg.Users)
	if err != nil {
		return nil, err
	}
	s := &sampler{metricsURL: cfg.MetricsURL, gcURL: cfg.GCURL, pid: cfg.ServerPID, start: time.Now(), http: &http.Client{Timeout: 30 * time.Second}}
	res := &SoakResult{}
	if cfg.Warmup > 0 {
		fmt.Fprintf(cfg.Progress, "warm-up: %d live connections for %v\n", cfg.Live, cfg.Warmup)
		warm, stop := context.WithTimeout(ctx, cfg.Warmup)
		(&soakChurn{cfg: cfg, tokens: tokens}).run(warm)
		stop()
		sleep(ctx, cfg.Settle)
	}
	if err := s.collectGarbage(ctx); err != nil {
		return nil, err
	}
	if res.Baseline, err = s.read(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "baseline   %v\n", res.Baseline)

	ch := &soakChurn{cfg: cfg, tokens: tokens}
	churnCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	done := make(chan struct{})
	go func() { ch.run(churnCtx); close(done) }()
	fmt.Fprintf(cfg.Progress, "churn: %d live connections (ws and grpc), %d users, %d rooms, for %v\n", cfg.Live, cfg.Users, cfg.Rooms, cfg.Duration)
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
		case <-done:
			running = false
			continue
		}
		smp, err := s.read(ctx)
		if err != nil {
			fmt.Fprintf(cfg.Progress, "sample: %v\n", err)
			continue
		}
		res.During = append(res.During, smp)
		res.Peak = peakOf(res.Peak, smp)
		fmt.Fprintf(cfg.Progress, "during     %v  cycles %d failed %d\n", smp, ch.cycles.Load(), ch.failed.Load())
	}
	res.Cycles, res.Failed = ch.cycles.Load(), ch.failed.Load()
	res.Sent, res.Received = ch.sent.Load(), ch.received.Load()
	if p := ch.firstFailure.Load(); p != nil {
		res.FirstFailure = *p
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	fmt.Fprintf(cfg.Progress, "all closed; settling for %v\n", cfg.Settle)
	sleep(ctx, cfg.Settle)
	if err := s.collectGarbage(ctx); err != nil {
		return res, err
	}
	if res.After, err = s.read(ctx); err != nil {
		return res, err
	}
	fmt.Fprintf(cfg.Progress, "after      %v\n", res.After)
	res.Problems = cfg.Thresholds.Check(res.Baseline, res.Peak, res.After)
	return res, nil
}

// peakOf is the largest of each figure of a and b.
func peakOf(a, b Sample) Sample {
	return Sample{At: b.At, RSSBytes: max(a.RSSBytes, b.RSSBytes), HeapBytes: max(a.HeapBytes, b.HeapBytes),
		Goroutines: max(a.Goroutines, b.Goroutines), Connections: max(a.Connections, b.Connections)}
}

// signTokens signs a token for each of users soak users, as the server's.
func signTokens(secret []byte, users int) ([]string, error) {
	a, err := auth.New(auth.Config{Secret: secret, TTL: 24 * time.Hour})
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	defer a.Close()
	out := make([]string, users)
	for i := range out {
		if out[i], err = a.Issue(soakUser(i), false); err != nil {
			return nil, fmt.Errorf("sign token: %w", err)
		}
	}
	return out, nil
}

func soakUser(i int) string { return "soak" + strconv.Itoa(i) }

// soakChurn is the soak's connections going round.
type soakChurn struct {
	cfg    SoakConfig
	tokens []string

	cycles, failed, sent, received atomic.Int64
	firstFailure                   atomic.Pointer[string]
}

// run keeps Live connections going round until ctx ends, and returns once
// every one of them is closed.
func (ch *soakChurn) run(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range ch.cfg.Live {
		wg.Go(func() {
			// Start spread over one Hold, so that the cycles do not beat.
			sleep(ctx, rand.N(ch.cfg.Hold+1))
			for k := 0; ctx.Err() == nil; k++ {
				user := (w + k*ch.cfg.Live) % ch.cfg.Users
				if err := ch.cycle(ctx, w%2 == 0, user, k); err != nil && !over(ctx) {
					ch.failed.Add(1)
					msg := fmt.Sprintf("%s: %v", soakUser(user), err)
					ch.firstFailure.CompareAndSwap(nil, &msg)
					sleep(ctx, time.Second) // do not spin on a server that refuses
				}
			}
		})
	}
	wg.Wait()
}

// over reports whether ctx is done or past its deadline: a dial cut short
// by the end of the churn fails a moment before ctx says so, and is no
// failure of the server.
func over(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

// cycle is one connection's round: connect as user (over the WebSocket
// bridge or gRPC), join a room, chat for a while, leave, close.
func (ch *soakChurn) cycle(ctx context.Context, overWS bool, user, k int) error {
	token := func(string) (string, error) { return ch.tokens[user], nil }
	var d dialer
	if overWS {
		d = newWSDialer(ch.cfg.HTTPAddr, token, false)
	} else {
		g := &grpcDialer{addr: ch.cfg.GRPCAddr, perConn: 1, tokens: token}
		defer g.closeAll() // one HTTP/2 connection per cycle, closed with it
		d = g
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m := newMember(nil, "j"+strconv.Itoa(k))
	room := "soak" + strconv.Itoa(rand.N(ch.cfg.Rooms))
	c, err := d.dial(dialCtx, soakUser(user), room, m.joinID, m)
	if err != nil {
		return err
	}
	defer func() {
		c.close()
		ch.received.Add(m.received()) // every copy: the soak counts what was read, not who lost what
	}()
	hold := ch.cfg.Hold/2 + rand.N(ch.cfg.Hold+1)
	until := time.Now().Add(hold)
	payload := make([]byte, 0, PayloadSize)
	for n := uint64(0); time.Now().Before(until) && ctx.Err() == nil; n++ {
		if err := c.send(room, stampPayload(payload, time.Now(), uint32(user), n)); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		ch.sent.Add(1)
		sleep(ctx, min(ch.cfg.MessageEvery, time.Until(until)))
	}
	if m.dropped.Load() {
		return errors.New("dropped by the server")
	}
	if err := c.(leaver).leave(room); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	ch.cycles.Add(1)
	return nil
}

// leaver is a conn that can leave a room: both transports' are.
type leaver interface{ leave(room string) error }

var (
	_ leaver = (*wsConn)(nil)
	_ leaver = (*grpcConn)(nil)
)

func (c *wsConn) leave(room string) error {
	return c.writeFrame(ws.OpText, []byte(`{"type":"leave_room","room":"`+room+`"}`))
}

func (c *grpcConn) leave(room string) error {
	return c.stream.Send(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: room}}})
}
