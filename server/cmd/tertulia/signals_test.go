package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	"github.com/tertulia/tertulia/server/auth"
)

// openSessions opens a gRPC session on addr for each name, with tokens
// signed with secret, and reads their welcomes.
func openSessions(t *testing.T, addr, secret string, names ...string) []*client.Session {
	t.Helper()
	a, err := auth.New(auth.Config{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	var sessions []*client.Session
	for _, name := range names {
		tok, _ := a.Issue(name, false)
		c, err := client.Dial(addr, client.WithToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if f := <-s.Events(); f.GetSystem() == nil {
			t.Fatalf("%s: first frame %v, want welcome", name, f)
		}
		sessions = append(sessions, s)
	}
	return sessions
}

// terminate sends p a SIGTERM and waits, at most within, for it to exit
// with status 0.
func (p *serveProcess) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		if err != nil {
			t.Errorf("server exited with %v, want 0", err)
		}
	case <-time.After(within):
		t.Fatalf("server still running %v after SIGTERM, want it gone within %v", time.Since(start), within)
	}
}

// A second SIGTERM ends a long lame duck at once: the sessions not yet
// told are told (Unavailable, service restart) and the process exits.
func TestSecondSIGTERMForcesTheEnd(t *testing.T) {
	bin := buildBinary(t)
	secret := "shutdown-test-secret-0123456789"
	p := startServe(t, bin, []string{"TERTULIA_JWT_SECRET=" + secret}, "--shutdown-spread", "10m", "--shutdown-timeout", "20m")
	sessions := openSessions(t, p.grpcAddr, secret, "alice", "bob", "carol")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The first of three is told at once, the next after 200s: once one
	// has ended, the lame duck is under way.
	ended := make(chan int, len(sessions))
	for i, s := range sessions {
		go func() {
			for range s.Events() {
			}
			ended <- i
		}()
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("no session ended within 10s of SIGTERM")
	}
	p.terminate(t, 10*time.Second)
	for range len(sessions) - 1 {
		<-ended
	}
	for i, s := range sessions {
		if status.Code(s.Err()) != codes.Unavailable {
			t.Errorf("session %d ended with %v, want Unavailable", i, s.Err())
		}
	}
}
