package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tertulia/tertulia/clients/load"
)

// runSoak is `tertulia soak`: thousands of connections churning against a
// running server while its memory and goroutines are watched (make soak).
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg load.SoakConfig
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8000", "server HTTP address (WebSocket)")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "server gRPC address")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	secret := fs.String("jwt-secret", "", "the server's HS256 secret: the soak signs a token per user (required)")
	fs.IntVar(&cfg.Users, "users", 3000, "distinct users taking turns")
	fs.IntVar(&cfg.Live, "live", 1000, "connections open at any time, half WebSocket, half gRPC")
	fs.IntVar(&cfg.Rooms, "rooms", 50, "rooms the connections join")
	fs.DurationVar(&cfg.Hold, "hold", 0, "average time a connection stays in its room before it leaves and closes (default 5s)")
	fs.DurationVar(&cfg.MessageEvery, "message-every", 0, "each connection chats this often while in its room (default 2s)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long the churn lasts (default 3m, at most 1h)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "churn before the baseline is read (default 20s; negative: none)")
	fs.DurationVar(&cfg.Every, "every", 0, "time between samples of the server (default 10s)")
	fs.DurationVar(&cfg.Settle, "settle", 0, "wait after the last close before the final sample (default 10s)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "the server's /metrics (default http://HTTP-ADDR/metrics)")
	fs.StringVar(&cfg.GCURL, "gc-url", "", "fetched to run a GC in the server before the baseline and the final sample, e.g. http://ADMIN/debug/pprof/heap?gc=1")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process, to read its RSS from /proc")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg.JWTSecret = []byte(*secret)
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := load.Soak(ctx, cfg)
	if res == nil {
		return err
	}
	fmt.Fprintf(stdout, "soak: %d cycles (connect, join, chat, leave, close), %d failed; %d messages sent, %d received\n",
		res.Cycles, res.Failed, res.Sent, res.Received)
	if res.FirstFailure != "" {
		fmt.Fprintf(stdout, "first failure: %s\n", res.FirstFailure)
	}
	fmt.Fprintf(stdout, "baseline  %v\npeak      %v\nafter     %v\n", res.Baseline, res.Peak, res.After)
	if b, jerr := json.Marshal(res); jerr == nil {
		fmt.Fprintf(stdout, "%s\n", b)
	}
	if err != nil {
		return err
	}
	if len(res.Problems) > 0 {
		return fmt.Errorf("soak: not back near the baseline:\n  %s", strings.Join(res.Problems, "\n  "))
	}
	if res.Cycles == 0 {
		return errors.New("soak: no connection completed a cycle")
	}
	if res.Failed > 0 {
		// A server that refuses connections holds less memory: a soak
		// passes only if every cycle did what a user would.
		return fmt.Errorf("soak: %d of %d cycles failed; first: %s", res.Failed, res.Cycles+res.Failed, res.FirstFailure)
	}
	fmt.Fprintln(stdout, "soak: PASS: goroutines, heap and RSS back near the baseline")
	return nil
}
