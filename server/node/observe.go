package node

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"google.golang.org/grpc"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/httpedge"
	"github.com/tertulia/tertulia/server/logs"
	"github.com/tertulia/tertulia/server/metrics"
)

// What the node wires for operators: metrics and request ids on every
// transport, and the admin listener.

// observers are the gRPC server's first interceptors: the gRPC metrics see
// every call, refused ones included; each call gets a request id; Connect
// streams are counted by transport.
func (n *Node) observers() []grpc.ServerOption {
	return append(n.cfg.Metrics.GRPCServerOptions(),
		grpc.ChainUnaryInterceptor(logs.UnaryServer(n.log)),
		grpc.ChainStreamInterceptor(logs.StreamServer(n.log), n.countConnect, n.relayedPeer),
	)
}

// countConnect counts a Connect stream as a connection of its transport
// (grpc, or grpc-web when it came through the HTTP port) while it runs, and
// names the transport in its log records.
func (n *Node) countConnect(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if info.FullMethod != chatv1.ChatService_Connect_FullMethodName {
		return next(srv, ss)
	}
	t := transportOf(ss.Context())
	defer n.cfg.Metrics.Connected(t)()
	return next(srv, logs.StreamWithContext(logs.With(ss.Context(), slog.String("transport", t)), ss))
}

type transportKey struct{}

// withTransport marks the requests the gRPC-Web handler passes to the gRPC
// server: grpc-go serves them with the request's context.
func withTransport(ctx context.Context, t string) context.Context {
	return context.WithValue(ctx, transportKey{}, t)
}

func transportOf(ctx context.Context) string {
	if t, ok := ctx.Value(transportKey{}).(string); ok {
		return t
	}
	return metrics.GRPC
}

// observedUpstream counts the WebSocket sessions of the in-process bridge
// and gives each a request id and its transport in log records.
type observedUpstream struct {
	bridge.Upstream
	metrics *metrics.Registry
}

func (u observedUpstream) Start(ctx context.Context, token string, c *bridge.Conn, done func(error)) {
	closed := u.metrics.Connected(metrics.WebSocket)
	// One With for both: the context is held as long as the session is.
	ctx = logs.With(ctx, slog.String("request_id", logs.NewID()), slog.String("transport", metrics.WebSocket))
	u.Upstream.Start(ctx, token, c, func(err error) { closed(); done(err) })
}

// metricsOnHTTP is the /metrics handler of the HTTP port: none when an
// admin listener serves it.
func (n *Node) metricsOnHTTP() http.Handler {
	if n.cfg.AdminListener != nil {
		return nil
	}
	return n.cfg.Metrics.Handler(n.log)
}

// serveAdmin serves /metrics and net/http/pprof on the admin listener, if
// there is one, until the returned function is called.
func (n *Node) serveAdmin() (stop func()) {
	lis := n.cfg.AdminListener
	if lis == nil {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.cfg.Metrics.Handler(n.log))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpedge.ReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("admin listener", "addr", lis.Addr().String(), "err", err)
		}
	}()
	n.log.Info("admin", "addr", lis.Addr().String(), "serves", "/metrics /debug/pprof/")
	return func() {
		srv.Close()
		<-done
	}
}
