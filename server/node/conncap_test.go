package node_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// openH2 opens a TCP connection to the gRPC port, sends the HTTP/2 preface
// and SETTINGS, and reports whether the server answered (its SETTINGS) or
// closed the connection at once, and why.
func openH2(t *testing.T, srv *nodetest.Server) (net.Conn, error) {
	t.Helper()
	nc := rawConn(t, srv.GRPCAddr)
	nc.Write([]byte(http2.ClientPreface)) // a refused connection may fail the write: the read tells
	http2.NewFramer(nc, nc).WriteSettings()
	if _, err := nc.Read(make([]byte, 1)); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("gRPC port neither answered nor closed the connection within %v", waitTimeout)
		}
		return nc, err
	}
	return nc, nil
}

// Over conns_per_ip, the next TCP connection from the address to the gRPC
// port is closed at once, before grpc-go holds anything for it, and counted
// as the limit's refusals are; a session within the cap from the same
// address still works, and a closed connection gives its place back. Before,
// one address could hold thousands of connections that never opened a
// stream, each about 18 KiB and a file descriptor for the idle timeout.
func TestConnsPerIPBoundsGRPCConnections(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{ConnsPerIP: 3}}})
	alice := connect(t, srv, "alice") // 127.0.0.1's first connection
	idle, err := openH2(t, srv)
	if err != nil {
		t.Fatalf("second connection: %v, want it served within the cap", err)
	}
	if _, err := openH2(t, srv); err != nil {
		t.Fatalf("third connection: %v, want it served within the cap", err)
	}
	if _, err := openH2(t, srv); err == nil {
		t.Fatal("fourth connection from one address was served, want it closed at once over conns_per_ip 3")
	}
	if got := srv.Node.Hub().Metrics().Limits.RefusedIP.Load(); got != 1 {
		t.Errorf("refusals counted for ip: %d, want 1", got)
	}
	// A session on a connection within the cap still works, and another
	// session on that same connection is no new connection.
	alice.join("lounge")
	s2, err := alice.c.Connect(t.Context())
	if err != nil {
		t.Fatalf("second session on alice's connection: %v", err)
	}
	defer s2.Close()
	again := &user{t: t, name: "alice again", c: alice.c, s: s2}
	if f := again.next(); f.GetSystem() == nil {
		t.Fatalf("second session on alice's connection: first frame %v, want its welcome", f)
	}
	// Closing a connection gives its place back.
	idle.Close()
	eventually(t, func() string {
		if _, err := openH2(t, srv); err != nil {
			return "after a connection closed, a new one is still refused: " + err.Error()
		}
		return ""
	})
}

// A connection to the gRPC port that never sends its HTTP/2 preface (or
// never finishes its TLS handshake) is closed after the request wait, not
// held for grpc-go's 120 s: before, nothing bounded it.
func TestGRPCConnectionWithoutItsPrefaceIsClosed(t *testing.T) {
	srv := nodetest.Start(t, node.Config{RequestWait: 200 * time.Millisecond})
	c, err := net.Dial("tcp", srv.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("a connection that sent nothing: %v, want it closed by the server within %v", err, waitTimeout)
	}
}
