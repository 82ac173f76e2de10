// Package nodetest starts real Tertulia nodes on loopback :0 ports for tests.
package nodetest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
)

// Secret is the JWT secret of nodes started without one.
var Secret = []byte("nodetest-secret-0123456789abcdef")

// Server is a running node.
type Server struct {
	Node     *node.Node
	Config   node.Config
	GRPCAddr string // host:port of the gRPC listener
	HTTPAddr string // host:port of the HTTP listener
	Auth     *auth.Authenticator

	stop context.CancelFunc
	done chan error
}

// Start runs a node with cfg until the test ends. A config without a JWT
// secret gets Secret, and one without a shutdown spread 100ms.
func Start(t testing.TB, cfg node.Config) *Server {
	t.Helper()
	return StartOn(t, cfg, "127.0.0.1:0", "127.0.0.1:0")
}

// StartOn is Start with the gRPC and HTTP ports on the given addresses: a
// node restarted where its clients expect it.
func StartOn(t testing.TB, cfg node.Config, grpcAddr, httpAddr string) *Server {
	t.Helper()
	if len(cfg.JWT.Secret) == 0 {
		cfg.JWT.Secret = Secret
	}
	if cfg.ShutdownSpread == 0 {
		// Tests end with clients still connected: a short spread keeps
		// their shutdowns quick while still spreading.
		cfg.ShutdownSpread = 100 * time.Millisecond
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	a, err := auth.New(cfg.JWT)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	t.Cleanup(a.Close)
	gl := listen(t, grpcAddr)
	hl := listen(t, httpAddr)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Node: n, Config: cfg, GRPCAddr: gl.Addr().String(), HTTPAddr: hl.Addr().String(), Auth: a, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- n.Serve(ctx, gl, hl) }()
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop shuts the node down gracefully and waits for it. It is safe to call twice.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
	if s.done == nil {
		return
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("node.Serve: %v", err)
		}
	case <-time.After(s.Config.ShutdownTimeout + 5*time.Second):
		t.Errorf("node did not stop within %v", s.Config.ShutdownTimeout+5*time.Second)
	}
	s.done = nil
}

// Token returns a valid token for user.
func (s *Server) Token(t testing.TB, user string, admin bool) string {
	t.Helper()
	tok, err := s.Auth.Issue(user, admin)
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return tok
}

// URL returns http://HTTPAddr + path.
func (s *Server) URL(path string) string { return "http://" + s.HTTPAddr + path }

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return l
}

// Unlimited turns off the rates and the per-IP count, as load and ordering
// tests need: they send faster than a person, all from one address.
func Unlimited() node.Limits {
	return node.Limits{Limits: hub.Limits{
		MessagesPerSecond:     hub.Off,
		UserMessagesPerSecond: hub.Off,
		JoinsPerSecond:        hub.Off,
		ConnsPerIP:            hub.Off,
	}}
}
