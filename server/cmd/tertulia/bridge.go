package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/httpedge"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
)

// runBridge runs the WebSocket bridge as its own process: each browser
// connection becomes a Connect stream to the core at --upstream, so the
// edge that holds the sockets scales apart from the core.
func runBridge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	upstream := fs.String("upstream", "", "gRPC address of a Tertulia node, host:port (required)")
	httpAddr := fs.String("http-addr", ":8000", "HTTP address of the WebSocket endpoints")
	dev := fs.Bool("dev", false, "development mode: allow localhost origins")
	origins := fs.String("allowed-origins", "", "comma-separated origins allowed to open WebSockets")
	maxFrame := fs.Int("max-frame-bytes", hub.MaxFrameBytes, "largest client frame (a bigger one closes the connection with 1009), and largest message of several frames sent to a tertulia.v1 client")
	ping := fs.Duration("ping-interval", bridge.DefaultPingInterval, "server ping interval; a connection silent for two is closed")
	shutdown := fs.Duration("shutdown-timeout", node.DefaultShutdownTimeout, "bound on a graceful shutdown")
	logOpts := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *upstream == "" {
		return errors.New("--upstream (or TERTULIA_UPSTREAM) is required: the gRPC address of a node, such as localhost:9090")
	}
	log, err := logOpts.logger(stderr)
	if err != nil {
		return err
	}

	conn, err := grpc.NewClient(*upstream,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: grpcapi.KeepaliveTime, Timeout: grpcapi.KeepaliveTimeout}),
	)
	if err != nil {
		return fmt.Errorf("dial upstream %s: %w", *upstream, err)
	}
	defer conn.Close()
	b, err := bridge.New(bridge.Config{
		Upstream:      bridge.Remote{Client: chatv1.NewChatServiceClient(conn)},
		Origins:       bridge.Origins{Allowed: splitList(*origins), Dev: *dev},
		MaxFrameBytes: *maxFrame,
		PingInterval:  *ping,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	for pattern, h := range b.Handlers() {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"status": "healthy", "service": "tertulia-bridge", "connections": b.Conns()})
	})

	lis, err := bridge.Listen(ctx, *httpAddr)
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpedge.ReadHeaderTimeout, MaxHeaderBytes: 8 << 10, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "Tertulia bridge is running: ws://%s/api/v1/ws -> %s\n", node.LocalAddr(lis.Addr()), *upstream)
	log.Info("bridging", "http", lis.Addr().String(), "upstream", *upstream)

	errc := make(chan error, 1)
	// Upgrades are served straight off the listener (see bridge.Listener).
	go func() { errc <- srv.Serve(b.Listener(lis, srv.ReadHeaderTimeout)) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	// Browsers hear 1012 and reconnect (elsewhere); then HTTP drains.
	if err := b.Shutdown(sctx); err != nil {
		log.Warn("websocket shutdown timed out", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}
