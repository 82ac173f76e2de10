package hub

import (
	"sync"
	"time"
)

// announceDelay is the longest a presence announcement waits in a
// member's queue for a frame that wakes the writer (see outbox.pushLater).
// While a room is within its presence limit every join is announced to
// every member: 500 joiners cost 125,000 frames, and one write each (a
// loopback write costs 8-12 us) was the largest part of the server's CPU
// while 10,000 users joined one room. Held for up to 20 ms, a storm of
// joins costs each member one write per 20 ms instead of one per join
// (at 10,000 joins/s, up to 200 announcements in one write), while a
// presence list lags by less than a frame of a 60 Hz screen. Chat
// messages and a session's own answers are never held, and take the
// announcements queued before them along.
const announceDelay = 20 * time.Millisecond

// sweeper is the hub's passes over its sessions' outboxes: one ends the
// writers that stayed parked for writerLinger, the other wakes, every
// announceDelay, the writers of outboxes holding announcements. Each runs
// only while its list is not empty, so a quiet node runs neither, and no
// session holds a goroutine or a timer of its own for them.
type sweeper struct {
	idle  passes // outboxes whose writer parked
	later passes // outboxes holding announcements no writer was woken for
}

// holdLater lists o, which holds announcements no writer was woken for,
// for the next pass over them. The caller does not hold o.mu.
func (w *sweeper) holdLater(o *outbox) {
	w.later.add(o, announceDelay, (*outbox).flush)
}

// passes is one list of outboxes and the goroutine that passes over it.
type passes struct {
	mu      sync.Mutex // protects the fields below
	list    []*outbox
	running bool
}

// add puts o on the list, and starts passing over it every period unless
// that runs already. pass(o) reports whether o stays on the list. The
// caller does not hold o.mu.
func (p *passes) add(o *outbox, every time.Duration, pass func(*outbox) bool) {
	p.mu.Lock()
	p.list = append(p.list, o)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.run(every, pass)
	}
}

// run passes over the list every period until it is empty. The list is
// taken out for a pass and p.mu released meanwhile: a fan-out that adds to
// it holds its topic's lock, and must not wait for a pass over thousands
// of outboxes.
func (p *passes) run(every time.Duration, pass func(*outbox) bool) {
	var batch []*outbox
	for {
		time.Sleep(every)
		p.mu.Lock()
		batch, p.list = p.list, batch[:0]
		p.mu.Unlock()
		kept := batch[:0]
		for _, o := range batch {
			if pass(o) {
				kept = append(kept, o)
			}
		}
		p.mu.Lock()
		p.list = append(p.list, kept...)
		clear(batch) // let the outboxes go
		if len(p.list) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// endIdle is one pass of the sweeper over o's writer: it marks a parked
// writer stale, or tells a stale one to end. It reports whether o stays on
// the list.
func (o *outbox) endIdle() bool {
	o.mu.Lock()
	switch {
	case !o.writing:
		o.listed = false
		o.mu.Unlock()
		return false
	case o.parked && o.stale:
		o.quit, o.listed = true, false
		o.unparkLocked()
		return false
	case o.parked:
		o.stale = true
	}
	o.mu.Unlock()
	return true
}

// flush is one pass of the sweeper over o's held announcements: it wakes
// or starts the writer for them, unless a frame pushed since did. o leaves
// the list.
func (o *outbox) flush() bool {
	o.mu.Lock()
	o.later = false
	if len(o.queue) == 0 {
		o.mu.Unlock()
		return false
	}
	o.startWriterLocked()
	return false
}
