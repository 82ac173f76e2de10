package hub

import (
	"sync"
	"time"
)

// writerLinger is how long, at least, a writer waits for more frames once
// its queue is empty before it ends (at most twice that). Starting a
// goroutine, scheduling it and tearing it down cost more than the rest of a
// delivery together (runtime.newproc1, gfget and goexit0 were a third of
// BenchmarkFanout/mode=paced's CPU): a room that hears a message every few
// hundred milliseconds keeps its members' writers parked between messages
// instead, and each message wakes them with a channel send. It is longer
// than the gap of the fan-out load test (10 messages/s), short enough that
// a quiet session soon holds no goroutine.
const writerLinger = 250 * time.Millisecond

// quietRuns is how many writers a session starts before its writers
// linger: the first ones carry its welcome and the answer to its first
// join, after which most sessions stay quiet, and 10,000 of them joining
// at once would otherwise hold 10,000 parked goroutines (and their stacks
// in the server's RSS) for nothing.
const quietRuns = 2

// outbox is a session's bounded outbound queue and its one writer. It has a
// lock of its own: fanning out to a session takes only this one, never the
// session's rooms or lifecycle.
type outbox struct {
	t         Transport
	maxFrames int // bounds of the queue; push refuses past either
	maxBytes  int

	// The fields every push reads come first, to share cache lines with
	// the Session fields a fan-out reads.
	mu      sync.Mutex // protects the fields below
	queue   [][]byte   // frames waiting for the writer
	queued  int        // bytes in queue
	writing bool       // a writer goroutine is running, busy or parked
	// parked says the writer waits on wake for frames; whoever clears it
	// sends wake one token. wake is made with the first writer that parks.
	parked  bool
	held    bool // not yet welcomed: frames wait, no writer starts
	closed  bool
	closing *Disconnect

	quit   bool           // the parked writer is to end: the sweeper found it idle
	stale  bool           // parked since the sweeper's last pass
	listed bool           // in the sweeper's list of idle writers
	later  bool           // in the sweeper's list of held announcements
	ended  DisconnectCode // why the server ended the session; 0 while it has not
	runs   int            // writers started so far
	// pushed: a frame other than an announcement was pushed since the
	// writer last parked or ended. Only such a writer lingers: announcements alone
	// (a room filling up) say nothing of more frames to come, and parking
	// every member's writer for them held a goroutine per member.
	pushed  bool
	wake    chan struct{}
	writeFn func()   // o.write, made once: `go o.write()` would allocate a closure per start
	spare   [][]byte // the writer's previous batch, reused as the next queue
	sweep   *sweeper
}

// push adds one frame for the writer without waiting. It reports false if
// the queue would pass its bounds: the outbox is then closed, its queue
// dropped, and the caller must close the transport as slow.
func (o *outbox) push(b []byte) bool { return o.add(b, false) }

// fits reports whether frames frames of size bytes in all stay within the
// queue's bounds.
func (o *outbox) fits(frames, size int) bool {
	return frames <= o.maxFrames && size <= o.maxBytes
}

// open reports whether frames pushed now may still go out: o is neither
// closed (overflowed, or its writer ended) nor draining.
func (o *outbox) open() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.closed && o.closing == nil
}

// overflow closes the outbox as slow and drops its queue, as a push past
// its bounds does, and reports whether it was open: the caller must then
// close the transport as slow.
func (o *outbox) overflow() bool {
	o.mu.Lock()
	if o.closed || o.closing != nil {
		o.mu.Unlock()
		return false
	}
	o.overflowLocked()
	return true
}

// overflowLocked closes o as slow, and unlocks o.mu.
func (o *outbox) overflowLocked() {
	o.closed = true
	o.ended = DisconnectSlow
	o.queue, o.queued = nil, 0
	o.unparkLocked()
}

// pushLater adds one frame like push but wakes no writer for it: it goes
// out with the next frame pushed, in its place in the queue, or when the
// sweeper next passes over held frames, within announceDelay. A storm of
// announcements then costs a member one write per announceDelay rather
// than one per announcement (see announceDelay).
func (o *outbox) pushLater(b []byte) bool { return o.add(b, o.sweep != nil) }

func (o *outbox) add(b []byte, later bool) bool {
	o.mu.Lock()
	if o.closed || o.closing != nil {
		o.mu.Unlock()
		return true
	}
	if !o.fits(len(o.queue)+1, o.queued+len(b)) {
		o.overflowLocked()
		return false
	}
	o.queue = append(o.queue, b)
	o.queued += len(b)
	if !later {
		o.pushed = true
		o.startWriterLocked()
		return true
	}
	// A busy writer takes b with what it writes next, and a held outbox
	// sends everything once welcomed: only a parked or ended writer needs
	// the sweeper.
	list := !o.later && !o.held && (o.parked || !o.writing)
	o.later = o.later || list
	o.mu.Unlock()
	if list {
		o.sweep.holdLater(o)
	}
	return true
}

// welcome puts b, the session's first frame, ahead of everything queued
// while it was being opened, and lets the writer go. Until then a lobby
// event published by another connection could have reached the client
// before its own welcome.
func (o *outbox) welcome(b []byte) {
	o.mu.Lock()
	o.held = false
	if o.closed || o.closing != nil {
		o.mu.Unlock()
		return
	}
	if b != nil {
		o.queue = append(o.queue, nil)
		copy(o.queue[1:], o.queue)
		o.queue[0] = b
		o.queued += len(b)
	}
	o.startWriterLocked()
}

// startWriterLocked wakes the parked writer, or starts one unless one runs
// or the outbox is held, and unlocks o.mu.
func (o *outbox) startWriterLocked() {
	if o.parked {
		o.unparkLocked()
		return
	}
	start := !o.writing && !o.held
	if start {
		o.writing = true
		o.runs++
		if o.writeFn == nil {
			o.writeFn = o.write
		}
	}
	write := o.writeFn
	o.mu.Unlock()
	if start {
		// The writer exists only while frames wait (and writerLinger after),
		// so an idle session holds no goroutine, and everything queued
		// meanwhile goes out as one batch. Starting it allocates nothing: a
		// func value called without arguments needs no closure.
		go write()
	}
}

// unparkLocked wakes the writer if it is parked, and unlocks o.mu. The
// send never blocks: wake holds one token, and only the one who cleared
// parked sends it.
func (o *outbox) unparkLocked() {
	wake := o.parked
	o.parked = false
	o.mu.Unlock()
	if wake {
		o.wake <- struct{}{}
	}
}

// write drains the queue in batches until it is empty and, unless it is
// one of the session's first quietRuns writers, waits writerLinger for more
// before it ends.
func (o *outbox) write() {
	o.mu.Lock()
	for {
		batch := o.queue
		if len(batch) == 0 && o.pushed && !o.closed && o.closing == nil && !o.quit && o.runs > quietRuns && o.sweep != nil {
			o.pushed = false
			// A plain receive, not a select with a timer: the sweeper ends
			// idle writers, so that a park and a wake-up cost a channel
			// hand-off and nothing more.
			if o.wake == nil {
				o.wake = make(chan struct{}, 1)
			}
			o.parked, o.stale = true, false
			list := !o.listed
			o.listed = true
			o.mu.Unlock()
			if list {
				o.sweep.idle.add(o, writerLinger, (*outbox).endIdle)
			}
			<-o.wake
			o.mu.Lock()
			continue
		}
		if len(batch) == 0 || o.closed {
			o.quit = false
			o.writing = false
			// The writer ends with the session idle: its batch arrays go
			// too. A member of a busy room that joined early may have
			// grown them to hundreds of entries; kept, they were most of
			// an idle connection's heap.
			o.queue, o.spare = nil, nil
			o.pushed = false
			d := o.closing
			if d != nil && !o.closed {
				o.closed = true
			} else {
				d = nil
			}
			o.mu.Unlock()
			if d != nil {
				o.t.Close(*d)
			}
			return
		}
		o.queue, o.spare = o.spare[:0], nil
		o.queued = 0
		o.mu.Unlock()

		err := o.t.Write(batch)
		clear(batch) // let the shared frames go
		o.mu.Lock()
		o.spare = batch[:0]
		if err != nil {
			o.closed = true
			o.ended = DisconnectWriteError
			o.queue, o.queued = nil, 0
			o.quit = false
			o.writing = false
			o.mu.Unlock()
			o.t.Close(Disconnect{Code: DisconnectWriteError, Reason: err.Error()})
			return
		}
	}
}

// drain closes the transport with d once what is queued has been written.
func (o *outbox) drain(d Disconnect) {
	o.mu.Lock()
	if o.closed || o.closing != nil {
		o.mu.Unlock()
		return
	}
	o.closing = &d
	o.ended = d.Code
	if o.writing && !o.parked {
		o.mu.Unlock()
		return // the writer closes the transport once it has drained the queue
	}
	if len(o.queue) > 0 && !o.held {
		// Announcements wait for the sweeper (see pushLater): the writer,
		// woken or started now, writes them, then closes the transport.
		o.startWriterLocked()
		return
	}
	// Nothing is on its way: closed here, before drain returns, as
	// Shutdown expects; a parked writer is woken to end.
	o.closed = true
	o.unparkLocked()
	o.t.Close(d)
}

// stop drops what is queued and takes no more frames, and returns why the
// server ended the session (0 if it did not). The transport is not told:
// its session is being closed. A parked writer is woken to end.
func (o *outbox) stop() DisconnectCode {
	o.mu.Lock()
	o.closed = true
	o.queue, o.queued = nil, 0
	ended := o.ended
	o.unparkLocked()
	return ended
}
