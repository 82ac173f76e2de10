package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/tertulia/tertulia/clients/load"
)

// runBench is `tertulia bench`: the load tool against a running server.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg load.Config
	fs.StringVar(&cfg.Scenario, "scenario", "fanout", "scenario: "+strings.Join(load.Scenarios, ", "))
	fs.StringVar(&cfg.Transport, "transport", "ws", "transport: ws (JSON over the WebSocket bridge) or grpc")
	fs.StringVar(&cfg.Client, "client", "own", "WebSocket client: own (zero-copy frames) or coder (coder/websocket, as a lean production client)")
	fs.BoolVar(&cfg.OfferProtocol, "subprotocol", false, "own client: offer the tertulia.v1 subprotocol, with which a frame may carry several events (coder always does)")
	fs.StringVar(&cfg.Protocol, "protocol", "tertulia", "what the server speaks: tertulia, or centrifugo (Centrifugo v6's JSON protocol over WebSocket, to compare; --http-addr is Centrifugo's, --jwt-secret its token HMAC secret)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8000", "server HTTP address (WebSocket)")
	fs.StringVar(&cfg.PubHTTPAddr, "pub-http-addr", "", "fanout: the publisher's node HTTP address, for delivery across a cluster (default: --http-addr)")
	fs.StringVar(&cfg.PubGRPCAddr, "pub-grpc-addr", "", "fanout: the publisher's node gRPC address (default: --grpc-addr)")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "server gRPC address")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.BoolVar(&cfg.TLS, "tls", false, "own client: speak wss, trusting any certificate (a server run with --tls-cert)")
	secret := fs.String("jwt-secret", "", "sign a token per user with the server's HS256 secret")
	fs.StringVar(&cfg.Token, "token", "", "one token for every connection (as printed by tertulia token)")
	fs.IntVar(&cfg.Users, "users", 0, "distinct users the connections belong to (default: one per connection; fewer only to compare)")
	fs.IntVar(&cfg.Conns, "conns", 1000, "subscribers (fanout, churn, reconnect) or connections (rooms, idle)")
	fs.IntVar(&cfg.Rooms, "rooms", 0, "rooms (rooms, idle; default conns/10)")
	fs.StringVar(&cfg.Room, "room", "bench", `the room every subscriber joins (fanout, churn, reconnect); "-" for the lobby, to compare`)
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages/s: in total (fanout, churn; default 1000), per member (rooms; default 1)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "publishing time, or holding time for idle (default 10s)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "bound on the wait for the last deliveries (default 5s)")
	fs.Float64Var(&cfg.ChurnRate, "churn-rate", 0, "churn: connections opened and closed per second (default 100)")
	fs.IntVar(&cfg.Dialers, "dialers", 0, "connections set up at once (default 64)")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 0, "bound on setting up the connections, and on the reconnect storm (default 2m)")
	fs.IntVar(&cfg.StreamsPerConn, "streams-per-conn", 1, "gRPC streams per HTTP/2 connection")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to read CPU and RSS from /proc")
	restart := fs.String("restart", "", "reconnect over ws: restart the server for the storm: kill --server-pid with SIGKILL, run this command (sh -c) in its place on the same addresses, and stop it with SIGTERM after the run")
	fs.StringVar(&cfg.ProfileURL, "profile-url", "", "server pprof CPU profile URL, e.g. http://127.0.0.1:6060/debug/pprof/profile")
	fs.StringVar(&cfg.ProfileOut, "profile-out", "", "save the server's CPU profile over the measured phase here")
	svg := fs.String("svg", "", "write the latency distribution to this SVG file")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile over the whole run to this file")
	markdown := fs.String("markdown", "", "instead of a run, print the results in this file (label TAB JSON lines) as a Markdown table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *markdown != "" {
		return printMarkdown(*markdown, stdout)
	}
	cfg.JWTSecret = []byte(*secret)
	cfg.Warnings = stderr // even with --quiet
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if *restart != "" {
		if cfg.ServerPID <= 0 {
			return errors.New("--restart needs --server-pid, the server to kill")
		}
		if cfg.Progress == nil {
			cfg.Progress = io.Discard
		}
		r := &restarter{cmdline: *restart, pid: cfg.ServerPID, health: "http://" + cfg.HTTPAddr + "/health", log: stderr, progress: cfg.Progress,
			client: &http.Client{Timeout: time.Second}}
		cfg.Restart = r.restart
		defer r.stop()
	}
	res, runErr := load.Run(ctx, cfg)
	if res == nil {
		return runErr
	}
	if err := load.WriteTable(stdout, res); err != nil {
		return err
	}
	if err := load.WriteJSON(stdout, res); err != nil {
		return err
	}
	if *svg != "" && res.Delivered > 0 {
		f, err := os.Create(*svg)
		if err != nil {
			return fmt.Errorf("svg: %w", err)
		}
		if err := load.WriteSVG(f, res); err != nil {
			f.Close()
			return fmt.Errorf("svg: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("svg: %w", err)
		}
	}
	return runErr
}

// startCPUProfile profiles this process into file until the returned
// function is called: what the load tool itself spends, to keep it from
// being the bottleneck of what it measures.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// printMarkdown prints the results saved in file as a Markdown table.
func printMarkdown(file string, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("markdown: %w", err)
	}
	defer f.Close()
	labels, results, err := load.ReadResults(f)
	if err != nil {
		return err
	}
	return load.WriteMarkdown(stdout, labels, results)
}
