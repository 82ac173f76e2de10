package hub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// offsetEncoder writes what a history test checks: kind, offset, text.
type offsetEncoder struct{}

func (offsetEncoder) Encode(ev *hub.Event) ([]byte, error) {
	return fmt.Appendf(nil, "%s %d %s", ev.Kind, ev.Offset, ev.Message), nil
}

// windowBroker lets another publisher in exactly where a join is most
// fragile: right before and right after the joiner reads the room's log,
// once it has subscribed to the room.
type windowBroker struct {
	*memory.Broker
	armed atomic.Bool
	n     atomic.Int64
}

func (b *windowBroker) publishOther(ctx context.Context, topic string) {
	ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Room: strings.TrimPrefix(topic, "room:"),
		Message: fmt.Sprintf("other%d", b.n.Add(1)), Sender: "other", UserID: "other"}
	if _, err := b.Append(ctx, topic, ev, hub.AppendOptions{Log: hub.LogLimits{Size: 100}}); err != nil {
		panic(err)
	}
}

func (b *windowBroker) ReadLog(ctx context.Context, topic string, q hub.LogQuery) (hub.LogPage, error) {
	if !b.armed.Swap(false) {
		return b.Broker.ReadLog(ctx, topic, q)
	}
	b.publishOther(ctx, topic)
	b.publishOther(ctx, topic)
	page, err := b.Broker.ReadLog(ctx, topic, q)
	b.publishOther(ctx, topic)
	b.publishOther(ctx, topic)
	return page, err
}

// frames waits for tr to hold n frames of kind message and returns them all.
func (t *recordingTransport) messages(tb testing.TB, n int) []string {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		t.mu.Lock()
		var out []string
		for _, f := range t.frames {
			if strings.HasPrefix(string(f), "message ") || strings.HasPrefix(string(f), "room_joined ") {
				out = append(out, string(f))
			}
		}
		t.mu.Unlock()
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			tb.Fatalf("got %q, want %d message and room_joined frames", out, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Messages published between a joiner's subscription and its read of the
// log, and between the read and the end of its join, each reach it once, in
// offset order, after its room_joined: the replay and the live stream meet
// with no gap and no duplicate.
func TestJoinMeetsTheLiveStream(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cmd  hub.Command
		want []string
	}{
		{"since", hub.Command{Since: &hub.Position{Offset: 1}}, []string{
			"room_joined 5 ", "message 2 m2", "message 3 m3", "message 4 other1", "message 5 other2", "message 6 other3", "message 7 other4"}},
		{"history", hub.Command{History: 2}, []string{
			"room_joined 5 ", "message 4 other1", "message 5 other2", "message 6 other3", "message 7 other4"}},
		{"neither", hub.Command{}, []string{"room_joined 5 ", "message 6 other3", "message 7 other4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &windowBroker{Broker: memory.New()}
			h := hub.New(hub.Config{}, b)
			poster, err := h.Open(ctx, hub.Identity{UserID: "p", Name: "p"}, &recordingTransport{enc: offsetEncoder{}})
			if err != nil {
				t.Fatal(err)
			}
			defer poster.Close(ctx)
			poster.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r"})
			for i := range 3 {
				poster.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: "r", Message: fmt.Sprintf("m%d", i+1)})
			}
			tr := &recordingTransport{enc: offsetEncoder{}}
			s, err := h.Open(ctx, hub.Identity{UserID: "j", Name: "j"}, tr)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			cmd := tc.cmd
			if cmd.Since != nil {
				page, err := b.ReadLog(ctx, "room:r", hub.LogQuery{})
				if err != nil {
					t.Fatal(err)
				}
				cmd.Since = &hub.Position{Offset: cmd.Since.Offset, Epoch: page.Epoch}
			}
			b.armed.Store(true)
			cmd.Kind, cmd.Room = hub.CmdJoinRoom, "r"
			s.Handle(ctx, cmd)
			got := tr.messages(t, len(tc.want))
			for i := range got {
				got[i] = strings.TrimSuffix(got[i], "j joined room r")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("joiner got\n %q\nwant\n %q", got, tc.want)
			}
		})
	}
}
