package client

import (
	"sync"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// outbox writes a Reconnecting session's frames on one connection, in the
// order they were put, from a goroutine of its own. Putting a frame never
// waits on the network: a write the server does not take (it reads
// nothing more, and the connection's flow-control window is full) holds up
// the frames behind it, but no lock of the session, so the connection's
// reader goes on taking the server's frames and answering them (its
// resends, the messages a join releases) with frames of its own, put
// behind the others. The session puts a frame while holding its mu, so the
// frames go in the order of the state that made them.
type outbox struct {
	sess *Session
	done chan struct{} // closed when the writing goroutine has ended

	mu     sync.Mutex // protects the fields below
	wake   sync.Cond  // on mu: a frame was put, or the outbox closed
	queue  []outgoing // put and not yet taken to be written
	closed bool
}

// outgoing is a frame to write, and where its write's result goes: nil if
// nobody waits for it.
type outgoing struct {
	f       *chatv1.ClientFrame
	written chan<- error
}

// newOutbox starts writing on s.
func newOutbox(s *Session) *outbox {
	o := &outbox{sess: s, done: make(chan struct{})}
	o.wake.L = &o.mu
	go o.run()
	return o
}

// put queues f for writing, behind the frames put before it. Nobody waits
// for its write: a failed write ends the connection, and what is kept for
// the next (Recovery) goes again there.
func (o *outbox) put(f *chatv1.ClientFrame) { o.add(outgoing{f: f}) }

// send queues f, as put does, and returns where its write's result comes:
// the caller waits for it after letting go of its locks.
func (o *outbox) send(f *chatv1.ClientFrame) <-chan error {
	written := make(chan error, 1)
	o.add(outgoing{f: f, written: written})
	return written
}

// add never finds o closed: frames are put under the session's mu while o
// is its outbox, and serve closes o only after letting it go under mu.
func (o *outbox) add(out outgoing) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queue = append(o.queue, out)
	o.wake.Signal()
}

// run writes what is put, in order, until close. A failed write ends the
// connection (its reader sees the end); the frames behind it are tried
// all the same, and fail as fast.
func (o *outbox) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		for len(o.queue) == 0 && !o.closed {
			o.wake.Wait()
		}
		batch, closed := o.queue, o.closed
		o.queue = nil
		o.mu.Unlock()
		for _, out := range batch {
			err := ErrReconnecting
			if !closed {
				err = o.sess.SendFrame(out.f)
			}
			if out.written != nil {
				out.written <- err
			}
		}
		if closed {
			return
		}
	}
}

// close stops the writing and waits for its goroutine: a write under way
// returns once the connection's stream ends (close it first). Frames put
// and not written are answered with ErrReconnecting: nothing was sent.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.wake.Signal()
	o.mu.Unlock()
	<-o.done
}
