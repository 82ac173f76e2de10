package hub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// batchesTransport keeps each write the hub makes, as the batch it was.
type batchesTransport struct {
	mu     sync.Mutex // protects writes and closed
	writes [][]string
	closed *hub.Disconnect
}

func (t *batchesTransport) Encoder() hub.Encoder { return textEncoder{} }
func (t *batchesTransport) Write(frames [][]byte) error {
	batch := make([]string, len(frames))
	for i, f := range frames {
		batch[i] = string(f)
	}
	t.mu.Lock()
	t.writes = append(t.writes, batch)
	t.mu.Unlock()
	return nil
}
func (t *batchesTransport) Close(d hub.Disconnect) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed == nil {
		t.closed = &d
	}
}

// frames returns every frame written so far, in order, and how many writes
// carried them.
func (t *batchesTransport) frames() (frames []string, writes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.writes {
		frames = append(frames, w...)
	}
	return frames, len(t.writes)
}

// has reports whether frame was written.
func (t *batchesTransport) has(frame string) bool {
	f, _ := t.frames()
	return slices.Contains(f, frame)
}

// inRoom opens a session for user on h over a new batchesTransport and
// joins it to room.
func inRoom(t *testing.T, h *hub.Hub, user, room string) (*hub.Session, *batchesTransport) {
	t.Helper()
	ctx := context.Background()
	tr := &batchesTransport{}
	s, err := h.Open(ctx, hub.Identity{UserID: user, Name: user}, tr)
	if err != nil {
		t.Fatalf("open %s: %v", user, err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: room})
	return s, tr
}

// roomFrames keeps the frames of room r (announcements and messages),
// in order.
func roomFrames(frames []string) []string {
	var out []string
	for _, f := range frames {
		if strings.HasPrefix(f, "room_joined r ") || strings.HasPrefix(f, "message r ") {
			out = append(out, f)
		}
	}
	return out
}

// N joins announced to M members wake no writer: each member is written
// them with the chat messages sent between them, in the order they were
// queued, in far fewer than N×M writes.
func TestJoinStormIsWrittenWithTheNextMessage(t *testing.T) {
	const members, joiners = 10, 40
	ctx := context.Background()
	h := hub.New(hub.Config{Limits: unlimited}, memory.New())
	t.Cleanup(hub.PauseAnnouncements(h)) // only messages wake writers; resumed after the sessions close
	var trs []*batchesTransport
	var speaker *hub.Session
	for i := range members {
		s, tr := inRoom(t, h, fmt.Sprintf("m%d", i), "r")
		speaker = s
		trs = append(trs, tr)
	}
	_, before := trs[0].frames()
	var want []string
	for i := range joiners {
		if i == joiners/2 {
			speaker.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: "r", Message: "mid"})
			want = append(want, "message r mid")
		}
		user := fmt.Sprintf("j%d", i)
		inRoom(t, h, user, "r")
		want = append(want, "room_joined r "+user+" joined room r")
	}
	speaker.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: "r", Message: "end"})
	want = append(want, "message r end")

	writes := 0
	for i, tr := range trs {
		waitFor(t, "end message written", func() bool { return tr.has("message r end") })
		frames, n := tr.frames()
		writes += n
		got := roomFrames(frames)
		got = got[max(0, len(got)-len(want)):] // before: the other members' joins
		if !slices.Equal(got, want) {
			t.Errorf("member %d: got room frames\n%q\nwant\n%q", i, got, want)
		}
	}
	// Each member's writer is woken by the two messages (and by whatever it
	// was still writing of its own join): a handful of writes each.
	t.Logf("%d joins announced to %d members: %d writes", joiners, members, writes-members*before)
	if limit := members * joiners / 4; writes-members*before > limit {
		t.Errorf("%d joins announced to %d members took %d writes, want at most %d (one per announcement: %d)",
			joiners, members, writes-members*before, limit, joiners*members)
	}
}

// An announcement that no other frame follows is written by the sweeper's
// next pass, within AnnounceDelay. The bound asserted is a hundred times
// that, for a loaded machine: a writer never woken would never write it.
func TestAnnouncementAloneIsWrittenWithinTheBound(t *testing.T) {
	h := hub.New(hub.Config{Limits: unlimited}, memory.New())
	_, member := inRoom(t, h, "member", "r")
	waitFor(t, "own join written", func() bool { return member.has("room_joined r member joined room r") })
	start := time.Now()
	inRoom(t, h, "joiner", "r")
	want := "room_joined r joiner joined room r"
	waitFor(t, "announcement written", func() bool { return member.has(want) })
	if took, bound := time.Since(start), 100*hub.AnnounceDelay; took > bound {
		t.Errorf("announcement written after %v, want within %v (the bound is %v)", took, bound, hub.AnnounceDelay)
	}
}

// A session drained (the client is done, or the node shuts down) is written
// the announcements it holds before its transport is closed.
func TestDrainWritesHeldAnnouncements(t *testing.T) {
	h := hub.New(hub.Config{Limits: unlimited}, memory.New())
	t.Cleanup(hub.PauseAnnouncements(h))
	s, member := inRoom(t, h, "member", "r")
	waitFor(t, "own join written", func() bool { return member.has("room_joined r member joined room r") })
	inRoom(t, h, "joiner", "r")
	s.Drain()
	waitFor(t, "transport closed", func() bool {
		member.mu.Lock()
		defer member.mu.Unlock()
		return member.closed != nil
	})
	if want := "room_joined r joiner joined room r"; !member.has(want) {
		frames, _ := member.frames()
		t.Errorf("drained with %q written, want %q among them", frames, want)
	}
	if got := member.closed.Code; got != hub.DisconnectDone {
		t.Errorf("closed with %v, want DisconnectDone", got)
	}
}
