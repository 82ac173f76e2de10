package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A member that stops reading is disconnected as slow, with a reason, and the
// others get every message without waiting for it.
func TestSlowConsumerIsDisconnectedOthersGetEverything(t *testing.T) {
	const (
		messages = 3000
		size     = 1000
	)
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{QueueBytes: 1 << 20}, Limits: nodetest.Unlimited()})
	alice, bob := connect(t, srv, "alice"), connect(t, srv, "bob")

	// The slow member's client takes little from the network before it stops
	// (fixed 64 KiB HTTP/2 windows), so the server sees it stall.
	sc, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, "sloth", false)),
		client.WithDialOptions(grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	slow, err := sc.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	sloth := &user{t: t, name: "sloth", c: sc, s: slow}
	sloth.welcome = sloth.next().GetSystem()
	for _, u := range []*user{alice, bob, sloth} {
		u.join("stage")
	}
	// From here on sloth reads nothing.

	pad := strings.Repeat("x", size-16)
	start := time.Now()
	var wg sync.WaitGroup
	got := make(map[string]time.Duration)
	var mu sync.Mutex
	// progress[i] is how many messages fast member i has read. The publisher
	// keeps at most `window` messages ahead of the slowest fast member, so a
	// busy test machine cannot make a fast member look slow; the member that
	// reads nothing falls behind without bound.
	const window = 200
	var progress [2]atomic.Int64
	for k, u := range []*user{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < messages; {
				var f *chatv1.ServerFrame
				select {
				case f = <-u.s.Events():
				case <-time.After(waitTimeout):
					t.Errorf("%s: message %d not received within %v", u.name, i, waitTimeout)
					return
				}
				if f == nil {
					t.Errorf("%s: session ended at message %d: %v", u.name, i, u.s.Err())
					return
				}
				if f.GetMessage() == nil {
					continue
				}
				want := fmt.Sprintf("%08d%s", i, pad)
				i++
				progress[k].Store(int64(i))
				if f.GetMessage().Message != want {
					t.Errorf("%s: message %d = %.8q..., want %.8q...", u.name, i-1, f.GetMessage().Message, want)
					return
				}
			}
			mu.Lock()
			got[u.name] = time.Since(start)
			mu.Unlock()
		}()
	}
	for i := range messages {
		for wait := time.Now().Add(waitTimeout); min(progress[0].Load(), progress[1].Load()) < int64(i-window); {
			if time.Now().After(wait) {
				t.Errorf("fast members stalled at %d, %d of %d", progress[0].Load(), progress[1].Load(), i)
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := alice.s.Send("stage", fmt.Sprintf("%08d%s", i, pad)); err != nil {
			t.Errorf("send %d: %v", i, err)
			break
		}
		if t.Failed() {
			break
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("fast members got all %d messages: alice in %v, bob in %v (%.0f msg/s each)",
		messages, got["alice"], got["bob"], messages/got["bob"].Seconds())

	// The slow member was cut off with a reason, and counted.
	drained := 0
	timeout := time.After(waitTimeout)
	for open := true; open; {
		select {
		case _, open = <-slow.Events():
			drained++
		case <-timeout:
			t.Fatalf("slow session still open after the burst")
		}
	}
	if status.Code(slow.Err()) != codes.ResourceExhausted || !strings.Contains(slow.Err().Error(), "slow consumer") {
		t.Errorf("slow session ended with %v, want ResourceExhausted: slow consumer", slow.Err())
	}
	if drained >= messages {
		t.Errorf("slow member got %d frames, want fewer than %d", drained, messages)
	}
	if n := srv.Node.Hub().Metrics().SlowDisconnects.Load(); n != 1 {
		t.Errorf("slow disconnects = %d, want 1", n)
	}
}
