package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// within fails the test unless done is closed within waitTimeout.
func within(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: still waiting after %v", what, waitTimeout)
	}
}

// eventually polls cond until it holds, failing the test if it does not
// within waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, waitTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Close ends a session while one of its sends waits for a write the
// server does not take (it reads nothing more, and the stream's
// flow-control window and write quota are spent): the send fails, and
// Close returns, instead of waiting for that write for ever.
func TestCloseEndsASendBlockedOnItsWrite(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	p := startProxy(t, srv.GRPCAddr)
	c, err := client.Dial(p.l.Addr().String(), client.WithToken(srv.Token(t, "alice", false)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	await(t, s.Events(), "welcome", isWelcome)

	p.up.shut()
	// The first send, far larger than a flow-control window, is taken
	// whole into the stream's write quota, which it overdraws: the second
	// waits for quota that only the server's reading would give back.
	big := nodetest.RoomMessage("big", "", strings.Repeat("x", 1<<20))
	firstSent, secondDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(secondDone)
		s.SendFrame(big)
		close(firstSent)
		s.SendFrame(nodetest.RoomMessage("small", "", "hola"))
	}()
	within(t, firstSent, "the first send")
	eventually(t, "the second send holding the stream", func() bool { return client.Sending(s) })

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		s.Close()
	}()
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		p.up.open() // let the write through, so that nothing is left behind
		<-closed
		t.Fatalf("Close still blocked after %v behind a send the server does not take", waitTimeout)
	}
	within(t, secondDone, "the blocked send")
	for range s.Events() {
	}
}
