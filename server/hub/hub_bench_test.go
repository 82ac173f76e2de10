package hub_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// These benchmarks guard the fan-out path: they run under `make bench`, not
// `make test`. The transport below writes nowhere, so what they measure is
// the hub's own cost per delivery (queueing, waking a writer, batching);
// the cost of the sockets is measured by the load tool (clients/load).

// countingTransport counts what the hub writes and discards it.
type countingTransport struct {
	enc    hub.Encoder
	frames *atomic.Int64
	writes *atomic.Int64
	closed atomic.Bool
}

var _ hub.Transport = (*countingTransport)(nil)

func (t *countingTransport) Encoder() hub.Encoder { return t.enc }
func (t *countingTransport) Write(frames [][]byte) error {
	t.frames.Add(int64(len(frames)))
	t.writes.Add(1)
	return nil
}
func (t *countingTransport) Close(hub.Disconnect) { t.closed.Store(true) }

// textEncoder stands for a wire format: one small allocation per event, as
// a real encoder has.
type textEncoder struct{}

func (textEncoder) Encode(ev *hub.Event) ([]byte, error) {
	b := make([]byte, 0, 32+len(ev.Message)+len(ev.Room))
	b = append(b, ev.Kind.String()...)
	b = append(b, ' ')
	b = append(b, ev.Room...)
	b = append(b, ' ')
	return append(b, ev.Message...), nil
}

// room is a hub with subs sessions and a publisher in its lobby. The lobby
// goes through the same fan-out as a room, without the set-up cost of
// subs²/2 room_joined frames.
type room struct {
	h      *hub.Hub
	pub    *hub.Session
	subs   []*hub.Session
	trs    []*countingTransport
	frames atomic.Int64
	writes atomic.Int64
}

func newRoom(b *testing.B, subs int) *room {
	b.Helper()
	ctx := context.Background()
	r := &room{h: hub.New(hub.Config{QueueFrames: 1 << 20, QueueBytes: 1 << 30, Limits: unlimited}, memory.New())}
	enc := textEncoder{}
	open := func(i int) *hub.Session {
		t := &countingTransport{enc: enc, frames: &r.frames, writes: &r.writes}
		// One user for all: the set-up then announces one user_joined, not subs.
		s, err := r.h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, t)
		if err != nil {
			b.Fatalf("connect %d: %v", i, err)
		}
		r.trs = append(r.trs, t)
		return s
	}
	for i := range subs {
		r.subs = append(r.subs, open(i))
	}
	r.pub = open(subs)
	b.Cleanup(func() {
		for _, s := range append(r.subs, r.pub) {
			s.Close(ctx)
		}
	})
	return r
}

// settle waits until the hub has written want frames in all, at most 10s.
func (r *room) settle(b *testing.B, want int64) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.frames.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("got %d frames written, want %d", r.frames.Load(), want)
		}
		runtime.Gosched()
	}
}

// BenchmarkFanout publishes b.N lobby messages to subs members and waits for
// every delivery to be written. deliveries/s is the figure to watch; a
// regression of the fan-out path shows there and in allocs/delivery.
//
// burst publishes back to back, so writers find several frames queued and
// batch them (frames/write), as under heavy load; paced waits for each
// message to be written before the next, so every delivery wakes a writer
// of its own, as at a low rate (the costlier path per delivery).
func BenchmarkFanout(b *testing.B) {
	for _, mode := range []string{"burst", "paced"} {
		for _, subs := range []int{10, 1000, 10000} {
			b.Run("mode="+mode+"/subs="+strconv.Itoa(subs), func(b *testing.B) {
				benchFanout(b, subs, mode == "paced")
			})
		}
	}
}

func benchFanout(b *testing.B, subs int, paced bool) {
	r := newRoom(b, subs)
	members := int64(subs + 1)
	// Wait for the set-up (welcomes, one user_joined) to be written.
	r.settle(b, members+1)
	base := r.frames.Load()
	writes0 := r.writes.Load()
	ctx := context.Background()
	cmd := hub.Command{Kind: hub.CmdMessage, Message: "0123456789012345678901234567890123456789012345678901234567890123"}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		r.pub.Handle(ctx, cmd)
		if paced {
			r.settle(b, base+int64(i+1)*members)
		}
	}
	r.settle(b, base+int64(b.N)*members)
	took := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	d := float64(b.N) * float64(members)
	b.ReportMetric(d/took.Seconds(), "deliveries/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/d, "allocs/delivery")
	b.ReportMetric(d/float64(r.writes.Load()-writes0), "frames/write")
}

// BenchmarkFanoutRooms spreads b.N messages over many small rooms published
// from many goroutines at once: it shows contention between fan-outs.
func BenchmarkFanoutRooms(b *testing.B) {
	const rooms, perRoom = 100, 10
	ctx := context.Background()
	var frames, writes atomic.Int64
	h := hub.New(hub.Config{QueueFrames: 1 << 20, QueueBytes: 1 << 30, Limits: unlimited}, memory.New())
	pubs := make([]*hub.Session, rooms)
	var all []*hub.Session
	for r := range rooms {
		for i := range perRoom {
			t := &countingTransport{enc: textEncoder{}, frames: &frames, writes: &writes}
			s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, t)
			if err != nil {
				b.Fatal(err)
			}
			s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: fmt.Sprintf("r%d", r)})
			all = append(all, s)
			if i == 0 {
				pubs[r] = s
			}
		}
	}
	b.Cleanup(func() {
		for _, s := range all {
			s.Close(ctx)
		}
	})
	time.Sleep(100 * time.Millisecond)
	base := frames.Load()
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := int(next.Add(1)) % rooms
			pubs[r].Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: fmt.Sprintf("r%d", r), Message: "hello"})
		}
	})
	want := base + int64(b.N)*perRoom
	deadline := time.Now().Add(10 * time.Second)
	for frames.Load() < want && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	took := time.Since(start)
	b.StopTimer()
	if got := frames.Load(); got < want {
		b.Fatalf("got %d frames written, want %d", got, want)
	}
	b.ReportMetric(float64(b.N*perRoom)/took.Seconds(), "deliveries/s")
}

// BenchmarkIdleSession measures what an idle session joined to a room costs
// the hub: heap bytes and goroutines per session (the transport's own cost
// is not included). Each op sets up 10,000 sessions in 1,000 rooms, measures,
// and closes them: a fixed size, because closing is not constant time per
// session (the memory broker scans every room on each disconnect).
func BenchmarkIdleSession(b *testing.B) {
	const n, rooms = 10000, 1000
	ctx := context.Background()
	var frames, writes atomic.Int64
	for range b.N {
		h := hub.New(hub.Config{Limits: unlimited}, memory.New())
		runtime.GC()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		g0 := runtime.NumGoroutine()
		sessions := make([]*hub.Session, 0, n)
		for i := range n {
			t := &countingTransport{enc: textEncoder{}, frames: &frames, writes: &writes}
			s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, t)
			if err != nil {
				b.Fatal(err)
			}
			s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r" + strconv.Itoa(i%rooms)})
			sessions = append(sessions, s)
		}
		b.StopTimer()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // writers end once the welcomes are out
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/n, "heapB/session")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/session")
		for _, s := range sessions {
			s.Close(ctx)
		}
		b.StartTimer()
	}
}

// unlimited turns off the rate limits and connection caps: a benchmark is
// one publisher as fast as it can go, and thousands of sessions of one user.
var unlimited = hub.Limits{
	MessagesPerSecond: hub.Off, UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off,
	ConnsPerUser: hub.Off, ConnsPerIP: hub.Off, ConnsPerNode: hub.Off,
}
