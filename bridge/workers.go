package bridge

import (
	"sync"
	"sync/atomic"
)

// workers run the connections' set-up and bursts of frames (see
// Conn.Serve) on goroutines kept warm between bursts. A new goroutine starts
// with a small stack, and handling a frame grew it, by copying, to 8 KiB on
// every burst: an eighth of the server's time while connections were being
// set up.
type workers struct {
	tasks   chan func() // unbuffered: a send succeeds only when a worker waits
	maxIdle int32
	idle    atomic.Int32
	quit    chan struct{}
	once    sync.Once
}

func newWorkers(maxIdle int) *workers {
	return &workers{tasks: make(chan func()), maxIdle: int32(maxIdle), quit: make(chan struct{})}
}

// run runs f on a waiting worker, or on a new one if none waits: a burst
// never waits for another, however long that one takes.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.loop(f)
	}
}

// loop runs f, then waits for more unless enough workers wait already.
func (w *workers) loop(f func()) {
	for {
		f()
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return
		}
		select {
		case f = <-w.tasks:
			w.idle.Add(-1)
		case <-w.quit:
			w.idle.Add(-1)
			return
		}
	}
}

// stop lets the waiting workers end; running ones end after their task.
func (w *workers) stop() { w.once.Do(func() { close(w.quit) }) }
