package hub

import "sync"

// outbox is a session's bounded outbound queue and its one writer. It has a
// lock of its own: fanning out to a session takes only this one, never the
// session's rooms or lifecycle.
type outbox struct {
	t         Transport
	maxFrames int // bounds of the queue; push refuses past either
	maxBytes  int

	mu      sync.Mutex // protects the fields below
	writeFn func()     // o.write, made once: `go o.write()` would allocate a closure per start
	queue   [][]byte   // frames waiting for the writer
	spare   [][]byte   // the writer's previous batch, reused as the next queue
	queued  int        // bytes in queue
	writing bool       // a writer goroutine is running
	held    bool       // not yet welcomed: frames wait, no writer starts
	closing *Disconnect
	ended   DisconnectCode // why the server ended the session; 0 while it has not
	closed  bool
}

// push adds one frame for the writer without waiting. It reports false if
// the queue would pass its bounds: the outbox is then closed, its queue
// dropped, and the caller must close the transport as slow.
func (o *outbox) push(b []byte) bool {
	o.mu.Lock()
	if o.closed || o.closing != nil {
		o.mu.Unlock()
		return true
	}
	if len(o.queue) >= o.maxFrames || o.queued+len(b) > o.maxBytes {
		o.closed = true
		o.ended = DisconnectSlow
		o.queue, o.queued = nil, 0
		o.mu.Unlock()
		return false
	}
	o.queue = append(o.queue, b)
	o.queued += len(b)
	o.startWriterLocked()
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

// startWriterLocked starts the writer unless one runs or the outbox is
// held, and unlocks o.mu.
func (o *outbox) startWriterLocked() {
	start := !o.writing && !o.held
	if start {
		o.writing = true
		if o.writeFn == nil {
			o.writeFn = o.write
		}
	}
	write := o.writeFn
	o.mu.Unlock()
	if start {
		// The writer exists only while frames wait, so an idle session holds
		// no goroutine, and everything queued meanwhile goes out as one batch.
		// Starting it allocates nothing: a func value called without
		// arguments needs no closure, where `go s.write()` allocated one per
		// recipient of every fan-out, and the allocations made the fan-out
		// loop trigger GC work and give up its processor halfway through.
		go write()
	}
}

// write drains the queue in batches until it is empty.
func (o *outbox) write() {
	for {
		o.mu.Lock()
		batch := o.queue
		if len(batch) == 0 || o.closed {
			o.writing = false
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
		o.mu.Unlock()
		if err != nil {
			o.mu.Lock()
			o.closed = true
			o.ended = DisconnectWriteError
			o.queue, o.queued = nil, 0
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
	if o.writing {
		o.mu.Unlock()
		return // the writer closes the transport once it has drained the queue
	}
	o.closed = true
	o.mu.Unlock()
	o.t.Close(d)
}

// stop drops what is queued and takes no more frames, and returns why the
// server ended the session (0 if it did not). The transport is not told:
// its session is being closed.
func (o *outbox) stop() DisconnectCode {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.queue, o.queued = nil, 0
	return o.ended
}
