package hub

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// writesTransport hands each batch it is given to a channel.
type writesTransport struct {
	writes chan [][]byte

	mu     sync.Mutex // protects closed
	closed *Disconnect
}

func (t *writesTransport) Encoder() Encoder { return nil }
func (t *writesTransport) Write(frames [][]byte) error {
	t.writes <- append([][]byte(nil), frames...)
	return nil
}
func (t *writesTransport) Close(d Disconnect) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed == nil {
		t.closed = &d
	}
}

// eventually fails t unless cond holds within 5 s. It bounds a wait for
// something the code under test promises to do; it does not time it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newTestOutbox(tr *writesTransport) *outbox {
	return &outbox{t: tr, maxFrames: 100, maxBytes: 1 << 20, sweep: &sweeper{}}
}

// written pushes frame and waits until the writer has written it.
func written(t *testing.T, o *outbox, tr *writesTransport, frame string) {
	t.Helper()
	if !o.push([]byte(frame)) {
		t.Fatalf("push %q refused", frame)
	}
	select {
	case got := <-tr.writes:
		if len(got) != 1 || string(got[0]) != frame {
			t.Fatalf("got %q written, want [%s]", got, frame)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q not written within 5s", frame)
	}
}

// quiet writes the frames of a session's first quietRuns writers, each of
// which ends once its frame is written.
func quiet(t *testing.T, o *outbox, tr *writesTransport) {
	t.Helper()
	for i := range quietRuns {
		written(t, o, tr, fmt.Sprintf("quiet %d", i))
		eventually(t, "quiet writer ends", func() bool { _, w := o.state(); return !w })
	}
}

func (o *outbox) state() (runs int, writing bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.runs, o.writing
}

// A session's writer stays parked between bursts: the next burst wakes it
// instead of starting a goroutine. Once idle through the sweeper's passes
// it ends, and the sweeper with it.
func TestWriterParksBetweenBurstsThenEnds(t *testing.T) {
	tr := &writesTransport{writes: make(chan [][]byte, 10)}
	o := newTestOutbox(tr)
	quiet(t, o, tr) // the first writers end at once: most sessions then stay quiet
	written(t, o, tr, "a")
	written(t, o, tr, "b")
	written(t, o, tr, "c")
	if runs, _ := o.state(); runs != quietRuns+1 {
		t.Fatalf("got %d writers started, want %d (b and c woke the parked one)", runs, quietRuns+1)
	}
	eventually(t, "idle writer ends", func() bool { _, w := o.state(); return !w })
	eventually(t, "sweeper ends", func() bool {
		o.sweep.idle.mu.Lock()
		defer o.sweep.idle.mu.Unlock()
		return !o.sweep.idle.running && len(o.sweep.idle.list) == 0
	})
	written(t, o, tr, "d")
	if runs, _ := o.state(); runs != quietRuns+2 {
		t.Fatalf("got %d writers started, want %d", runs, quietRuns+2)
	}
	o.stop()
	eventually(t, "stopped writer ends", func() bool { _, w := o.state(); return !w })
}

// A parked writer is woken to close the transport on drain, and to end on
// stop.
func TestParkedWriterWokenByDrain(t *testing.T) {
	tr := &writesTransport{writes: make(chan [][]byte, 10)}
	o := newTestOutbox(tr)
	quiet(t, o, tr)
	written(t, o, tr, "a") // parks after
	d := Disconnect{Code: DisconnectDone, Reason: "client done"}
	o.drain(d)
	eventually(t, "transport closed", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.closed != nil
	})
	if *tr.closed != d {
		t.Fatalf("got closed with %+v, want %+v", *tr.closed, d)
	}
	eventually(t, "writer ends", func() bool { _, w := o.state(); return !w })
}

// Frames pushed for later wake no writer: they go out with the next frame
// pushed, before it, in one write. Past the queue's bounds they are
// refused like any other, and the session is slow.
func TestPushLaterWaitsForTheNextPush(t *testing.T) {
	tr := &writesTransport{writes: make(chan [][]byte, 10)}
	o := newTestOutbox(tr)
	o.sweep.later.running = true // as if the sweeper's next pass had not come
	quiet(t, o, tr)
	written(t, o, tr, "a") // the writer parks after it
	for _, f := range []string{"x", "y"} {
		if !o.pushLater([]byte(f)) {
			t.Fatalf("pushLater %q refused", f)
		}
	}
	select {
	case got := <-tr.writes:
		t.Fatalf("got %q written, want nothing before the next push", got)
	default:
	}
	if !o.push([]byte("m")) {
		t.Fatal("push refused")
	}
	select {
	case got := <-tr.writes:
		if want := []string{"x", "y", "m"}; fmt.Sprintf("%s", got) != fmt.Sprintf("%s", want) {
			t.Fatalf("got %q written, want %q in one write", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written within 5s")
	}
	eventually(t, "writer parks", func() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.parked })
	for i := range o.maxFrames {
		if !o.pushLater([]byte("z")) {
			t.Fatalf("pushLater %d refused, want the first %d taken", i, o.maxFrames)
		}
	}
	if o.pushLater([]byte("z")) {
		t.Fatalf("pushLater past %d frames taken, want refused", o.maxFrames)
	}
	if got := o.stop(); got != DisconnectSlow {
		t.Fatalf("ended %v, want DisconnectSlow", got)
	}
	eventually(t, "stopped writer ends", func() bool { _, w := o.state(); return !w })
}

// A writer that ends lets its batch arrays go: a session that got a burst
// (the announcements of a room filling up) and went idle keeps no queue.
func TestEndedWriterKeepsNoBatchArrays(t *testing.T) {
	tr := &writesTransport{writes: make(chan [][]byte, 10)}
	o := newTestOutbox(tr)
	o.mu.Lock()
	o.held = true // queue the burst before the writer starts
	o.mu.Unlock()
	for i := range 64 {
		if !o.push(fmt.Appendf(nil, "frame %d", i)) {
			t.Fatalf("push %d refused", i)
		}
	}
	o.welcome(nil)
	select {
	case got := <-tr.writes:
		if len(got) != 64 {
			t.Fatalf("got %d frames in the first write, want 64", len(got))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written within 5s")
	}
	eventually(t, "the session's first writer ends", func() bool { _, w := o.state(); return !w })
	o.mu.Lock()
	defer o.mu.Unlock()
	if cap(o.queue) != 0 || cap(o.spare) != 0 {
		t.Errorf("idle outbox keeps arrays of %d and %d entries, want none", cap(o.queue), cap(o.spare))
	}
}

// A writer that only announcements woke ends once they are written, rather
// than park: a room filling up would otherwise hold a parked goroutine per
// member.
func TestAnnouncementsAloneLeaveNoParkedWriter(t *testing.T) {
	tr := &writesTransport{writes: make(chan [][]byte, 10)}
	o := newTestOutbox(tr)
	o.sweep.later.running = true // the test flushes by hand
	quiet(t, o, tr)
	if !o.pushLater([]byte("joined")) {
		t.Fatal("pushLater refused")
	}
	o.flush()
	select {
	case got := <-tr.writes:
		if len(got) != 1 || string(got[0]) != "joined" {
			t.Fatalf("got %q written, want [joined]", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written within 5s")
	}
	var parked bool
	eventually(t, "the writer parks or ends", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		parked = o.parked
		return parked || !o.writing
	})
	if parked {
		t.Error("the writer parked after writing announcements alone, want it ended")
	}
	// A frame pushed after still gets a writer that lingers.
	written(t, o, tr, "hello")
	eventually(t, "the writer parks", func() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.parked })
	o.stop()
	eventually(t, "stopped writer ends", func() bool { _, w := o.state(); return !w })
}
