package cli_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/cli"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }

// syncBuffer is an io.Writer safe for the CLI's printer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTerminalChat(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// bob listens in #tapas until he sees alice's message.
	var bobOut syncBuffer
	bobIn, bobWrite := newPipe()
	bobDone := make(chan error, 1)
	go func() {
		bobDone <- cli.Run(ctx, cli.Config{Addr: srv.GRPCAddr, Token: srv.Token(t, "bob", false)}, bobIn, &bobOut)
	}()
	bobWrite("/join tapas\n")
	waitFor(t, &bobOut, "#tapas * bob joined room tapas")

	var aliceOut syncBuffer
	script := "/join tapas\nhola bob\n/msg bob en privado\n/join no spaces\n/quit\n"
	if err := cli.Run(ctx, cli.Config{Addr: srv.GRPCAddr, Token: srv.Token(t, "alice", false)}, strings.NewReader(script), &aliceOut); err != nil {
		t.Fatalf("alice's chat: %v", err)
	}
	waitFor(t, &bobOut, "#tapas <alice> hola bob")
	waitFor(t, &bobOut, "(private) <alice> en privado")
	for _, want := range []string{"Welcome alice", "#tapas <alice> hola bob"} {
		if !strings.Contains(aliceOut.String(), want) {
			t.Errorf("alice's screen lacks %q:\n%s", want, aliceOut.String())
		}
	}
	bobWrite("/quit\n")
	if err := <-bobDone; err != nil {
		t.Errorf("bob's chat: %v", err)
	}
}

// Joining a room shows what was said there before, then what is said live.
func TestJoinShowsHistory(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var aliceOut syncBuffer
	script := "/join tapas\nuno\ndos\ntres\n/quit\n"
	if err := cli.Run(ctx, cli.Config{Addr: srv.GRPCAddr, Token: srv.Token(t, "alice", false)}, strings.NewReader(script), &aliceOut); err != nil {
		t.Fatalf("alice's chat: %v", err)
	}

	var bobOut syncBuffer
	bobIn, bobWrite := newPipe()
	bobDone := make(chan error, 1)
	go func() {
		bobDone <- cli.Run(ctx, cli.Config{Addr: srv.GRPCAddr, Token: srv.Token(t, "bob", false), History: 2}, bobIn, &bobOut)
	}()
	bobWrite("/join tapas\n")
	waitFor(t, &bobOut, "#tapas <alice> tres")
	bobWrite("cuatro\n")
	waitFor(t, &bobOut, "#tapas <bob> cuatro")
	bobWrite("/quit\n")
	if err := <-bobDone; err != nil {
		t.Errorf("bob's chat: %v", err)
	}
	screen := bobOut.String()
	if strings.Contains(screen, "<alice> uno") {
		t.Errorf("bob's screen shows more than the 2 messages of history asked for:\n%s", screen)
	}
	joined := strings.Index(screen, "bob joined room tapas")
	dos, tres, cuatro := strings.Index(screen, "<alice> dos"), strings.Index(screen, "<alice> tres"), strings.Index(screen, "<bob> cuatro")
	if joined < 0 || !(joined < dos && dos < tres && tres < cuatro) {
		t.Errorf("bob's screen, want the join, then dos and tres from the history, then cuatro:\n%s", screen)
	}
}

func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
