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
		o.sweep.mu.Lock()
		defer o.sweep.mu.Unlock()
		return !o.sweep.running && len(o.sweep.list) == 0
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
