// Package node assembles one Tertulia server: the hub and its broker, the
// gRPC server, the WebSocket bridge, gRPC-Web and the HTTP edge. New builds
// all of them, so every configuration error surfaces there; Serve only
// serves. The caller owns the listeners, so tests run a node on :0 ports.
package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/improbable-eng/grpc-web/go/grpcweb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/httpedge"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/i18n"
	"github.com/tertulia/tertulia/server/logs"
	"github.com/tertulia/tertulia/server/metrics"
	"github.com/tertulia/tertulia/server/tlsconfig"
)

// Config is everything a node needs. Zero values mean the documented defaults.
type Config struct {
	// Dev turns on the test-token endpoint and anonymous guests.
	Dev bool
	// JWT configures token checks; JWT.Secret is required.
	JWT auth.Config
	// AllowAnonymous admits sessions without a token as guests (always on in Dev).
	AllowAnonymous bool
	// AllowedOrigins may open WebSockets and call gRPC-Web from a browser.
	AllowedOrigins []string
	// Locale is the language of server texts for sessions whose token and
	// Accept-Language name none the server has. Default "en".
	Locale string
	// Broker joins the node to a cluster. Default: the embedded memory broker.
	Broker hub.Broker
	// Hub tunes sessions; its Limits are replaced by the node's.
	Hub hub.Config
	// Limits bound rates, connection counts and transports (see Limits).
	Limits Limits
	// Static holds the web pages served at /static/.
	Static fs.FS
	// ShutdownSpread is the window over which a shutdown ends the node's
	// sessions, evenly, so that their clients do not all reconnect at once
	// (see shutdown.go). Default DefaultShutdownSpread.
	ShutdownSpread time.Duration
	// ShutdownTimeout bounds a shutdown; once it has passed, what is left
	// ends at once. It must exceed ShutdownSpread. Default
	// DefaultShutdownTimeout, or twice the spread if that is longer.
	ShutdownTimeout time.Duration
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// TLS, when set, serves both ports over TLS with its certificate,
	// reloaded when its files change. Nil: plaintext.
	TLS *tlsconfig.Reloader
	// Bridge tunes the WebSocket bridge (frame limit, pings, timeouts); its
	// Upstream, Origins and Logger are the node's.
	Bridge bridge.Config
	// Metrics is the node's metrics registry, one per node. Default: a new
	// one. A caller passes its own to add collectors (the Redis broker's).
	Metrics *metrics.Registry
	// TrustedProxies are the peers whose relayed client address
	// (grpcapi.ClientIPMetadata, which `tertulia bridge` sends) the node
	// counts a session against, for the per-IP limit. Nil:
	// DefaultTrustedProxies (loopback); empty: none.
	TrustedProxies []netip.Prefix
	// AdminListener, if set, serves /metrics and net/http/pprof
	// (/debug/pprof/), and the HTTP port no longer serves /metrics. Serve
	// closes it.
	AdminListener net.Listener
	// RequestWait bounds the wait for a request once its head has come: a
	// REST body, a unary gRPC call's message (see grpcapi.RequestWait);
	// and a new gRPC connection's wait for its TLS handshake and HTTP/2
	// preface (grpc.ConnectionTimeout, 120 s otherwise). Default
	// httpedge.ReadHeaderTimeout.
	RequestWait time.Duration
}

// The shutdown defaults: a spread long enough that thousands of clients
// reconnect elsewhere a few hundred per second, and a bound that leaves
// time for the servers to drain after it.
const (
	DefaultShutdownSpread  = 10 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// Node is one Tertulia server.
type Node struct {
	cfg    Config
	log    *slog.Logger
	auth   *auth.Authenticator
	gate   auth.Gate
	hub    *hub.Hub
	chat   *grpcapi.ChatService
	health *health.Server
	grpc   *grpc.Server
	tokens *grpcapi.AuthService // in Dev only
	bridge *bridge.Bridge
	extra  map[string]http.Handler // mounted beside the gateway: the bridge, gRPC-Web
	stop   stopState
}

// New validates cfg and builds a node; Serve runs it.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.shutdownDefaults(); err != nil {
		return nil, err
	}
	if cfg.Broker == nil {
		cfg.Broker = memory.New()
	}
	a, err := auth.New(cfg.JWT)
	if err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	cfg.RequestWait = cmp.Or(cfg.RequestWait, httpedge.ReadHeaderTimeout)
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = DefaultTrustedProxies
	}
	cfg.Limits = cfg.Limits.withDefaults()
	hcfg := cfg.Hub
	hcfg.Limits = cfg.Limits.Limits
	if hcfg.Logger == nil {
		hcfg.Logger = cfg.Logger
	}
	// A session outlives its token by the leeway a token gets at connect,
	// and refreshes are verified as connect tokens are.
	if hcfg.TokenLeeway == 0 {
		hcfg.TokenLeeway = a.Leeway()
	}
	if hcfg.Tokens == nil {
		hcfg.Tokens = a
	}
	if hcfg.Texts, err = i18n.New(cfg.Locale); err != nil {
		return nil, err
	}
	if hcfg.ObservePublish == nil {
		hcfg.ObservePublish = cfg.Metrics.ObservePublish
	}
	n := &Node{
		cfg:    cfg,
		log:    cfg.Logger,
		auth:   a,
		gate:   auth.Gate{Auth: a, AllowAnonymous: cfg.AllowAnonymous || cfg.Dev},
		hub:    hub.New(hcfg, cfg.Broker),
		health: health.NewServer(),
		stop:   newStopState(),
	}
	n.chat = grpcapi.NewChatService(n.hub, cfg.Logger)
	n.grpc = grpc.NewServer(append(append(append(grpcapi.RequestWait(cfg.RequestWait), n.observers()...),
		serverCreds(cfg.TLS),
		grpc.ConnectionTimeout(cfg.RequestWait),
		grpcapi.ServerCodec(),
		grpc.ChainUnaryInterceptor(grpcapi.UnaryAuth(a), grpcapi.UnaryReads(!cfg.Dev)),
		grpc.ChainStreamInterceptor(grpcapi.StreamAuth(n.gate), grpcapi.StreamReads(a, !cfg.Dev)),
		grpc.MaxRecvMsgSize(hub.MaxFrameBytes),
	), cfg.Limits.grpcOptions()...)...)
	chatv1.RegisterChatServiceServer(n.grpc, n.chat)
	chatv1.RegisterAdminServiceServer(n.grpc, grpcapi.NewAdminService(n.hub, cfg.Logger))
	if cfg.Dev {
		// websocket_url answers to direct gRPC calls point at the HTTP
		// listener, known in Serve.
		n.tokens = grpcapi.NewAuthService(a, "")
		chatv1.RegisterAuthServiceServer(n.grpc, n.tokens)
	}
	healthpb.RegisterHealthServer(n.grpc, n.health)
	reflection.Register(n.grpc)
	cfg.Metrics.InitializeGRPC(n.grpc)
	cfg.Metrics.ObserveHub(n.hub)
	if err := n.mountHandlers(); err != nil {
		return nil, err
	}
	return n, nil
}

// Hub is the node's hub.
func (n *Node) Hub() *hub.Hub { return n.hub }

// Serve runs the node on the given listeners until ctx is cancelled, then
// shuts down as a lame duck (see shutdown.go) within
// Config.ShutdownTimeout, or at once after Force. It returns once every
// session has left the broker: the caller closes the broker after it. The
// node's authenticator is closed when Serve returns.
func (n *Node) Serve(ctx context.Context, grpcLis, httpLis net.Listener) error {
	defer n.auth.Close()
	listeners := []net.Listener{grpcLis, httpLis}
	// TLS under the bridge's listener, which hides it from net/http: r.TLS
	// is nil, and plain HTTP to this port is closed, not answered 400 (see
	// bridge.Bridge.Listener).
	httpLis = tlsListener(httpLis, n.cfg.TLS)
	conn, err := grpc.NewClient("passthrough:///"+grpcLis.Addr().String(),
		grpc.WithTransportCredentials(selfCreds(n.cfg.TLS)))
	if err != nil {
		return fmt.Errorf("dial own grpc: %w", err)
	}
	defer conn.Close()
	edgeCtx, cancelEdge := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelEdge()
	if n.tokens != nil {
		scheme := "ws://"
		if n.cfg.TLS != nil {
			scheme = "wss://"
		}
		n.tokens.SetWebSocketBase(scheme + LocalAddr(httpLis.Addr()))
	}
	handler, err := httpedge.Handler(edgeCtx, httpedge.Config{
		Conn:     conn,
		Dev:      n.cfg.Dev,
		Metrics:  n.metricsOnHTTP(),
		Static:   n.cfg.Static,
		Handlers: n.extra,
		// REST grants CORS to the origins WebSocket and gRPC-Web allow.
		AllowOrigin: bridge.Origins{Allowed: n.cfg.AllowedOrigins, Dev: n.cfg.Dev}.AllowOrigin,
		Stopping:    n.stop.stopping.Load,
		NotReady:    n.notReady,
		BodyTimeout: n.cfg.RequestWait,
	})
	if err != nil {
		return err
	}
	defer n.serveAdmin()()
	httpSrv := &http.Server{Handler: logs.HTTP(handler, n.log), ReadHeaderTimeout: httpedge.ReadHeaderTimeout, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
	n.cfg.Limits.limitHTTP(httpSrv)
	// WebSocket upgrades are served straight off the listener; everything
	// else, and an upgrade on a connection already speaking HTTP, by httpSrv
	// (which, over TLS, sees no *tls.Conn: r.TLS is nil, see above).
	httpLis = n.bridge.Listener(httpLis, httpedge.ReadHeaderTimeout)

	errc := make(chan error, 2)
	capped := capPerAddress(grpcLis, n.cfg.Limits.ConnsPerIP, &n.hub.Metrics().Limits.RefusedIP)
	go func() { errc <- n.grpc.Serve(capped) }()
	go func() { errc <- httpSrv.Serve(httpLis) }()
	n.setServing(healthpb.HealthCheckResponse_SERVING)
	readyCtx, stopReady := context.WithCancel(ctx)
	readyDone := make(chan struct{})
	go func() { defer close(readyDone); n.watchReady(readyCtx) }()
	defer func() { stopReady(); <-readyDone }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	n.shutdown(httpSrv, listeners)
	for range 2 - boolToInt(serveErr != nil) {
		if err := <-errc; err != nil && !stoppedServing(err) && serveErr == nil {
			serveErr = err
		}
	}
	return serveErr
}

// stoppedServing reports whether err is how a server's Serve ends when the
// node shuts down: its listener was closed first, then the server.
func stoppedServing(err error) bool {
	return errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, net.ErrClosed)
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mountHandlers builds the HTTP handlers mounted beside the gateway: the
// WebSocket bridge, attached to the chat service in-process, and gRPC-Web.
func (n *Node) mountHandlers() error {
	origins := bridge.Origins{Allowed: n.cfg.AllowedOrigins, Dev: n.cfg.Dev}
	bcfg := n.cfg.Bridge
	bcfg.Upstream = observedUpstream{bridge.InProcess{Chat: n.chat, Gate: n.gate}, n.cfg.Metrics}
	bcfg.Origins = origins
	bcfg.Logger = n.log
	bcfg.MaxTokenBytes = n.cfg.JWT.MaxTokenBytes
	b, err := bridge.New(bcfg)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	n.bridge = b
	n.cfg.Metrics.ObserveHandshakes(b.HandshakesRefused)
	h := b.Handlers()
	web := grpcWeb(n.grpc, origins, n.cfg.RequestWait)
	for _, path := range grpcweb.ListGRPCResources(n.grpc) {
		h[path] = web
	}
	n.extra = h
	return nil
}

// LocalAddr is a listener's address as a client on this machine reaches
// it: an unspecified host (":8000", "[::]:8000") is localhost.
func LocalAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// grpcWeb serves gRPC-Web (and its WebSocket transport, which carries the
// Connect stream) on the HTTP port. CORS answers only allowed origins;
// same-origin pages need none.
func grpcWeb(srv *grpc.Server, origins bridge.Origins, requestWait time.Duration) http.Handler {
	web := grpcweb.WrapServer(srv,
		grpcweb.WithOriginFunc(origins.AllowOrigin),
		grpcweb.WithWebsockets(true),
		grpcweb.WithWebsocketOriginFunc(origins.Allow),
		grpcweb.WithWebsocketsMessageReadLimit(hub.MaxFrameBytes),
		grpcweb.WithWebsocketPingInterval(bridge.DefaultPingInterval),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if web.IsGrpcWebRequest(r) || web.IsAcceptableGrpcCorsRequest(r) || web.IsGrpcWebSocketRequest(r) {
			if !web.IsGrpcWebSocketRequest(r) { // a call's request, which must come in time
				httpedge.BodyWithin(w, r, requestWait)
			}
			web.ServeHTTP(w, r.WithContext(withTransport(r.Context(), metrics.GRPCWeb)))
			return
		}
		// Plain HTTP/1.1 cannot carry gRPC: it goes to the gRPC port.
		http.Error(w, "gRPC-Web only here (content-type application/grpc-web); gRPC is on the gRPC port", http.StatusUnsupportedMediaType)
	})
}
