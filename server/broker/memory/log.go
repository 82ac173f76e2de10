package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// history is the memory broker's share of hub.Log: a ring of the latest
// events per topic, numbered within one epoch drawn when the broker is made,
// so that a restarted node's logs are told apart from the old ones.
type history struct {
	epoch string
	now   func() time.Time

	// held and heldBytes are the events in every ring and the bytes of
	// their text (hub.HistoryStats), kept as events come and go.
	held, heldBytes atomic.Int64

	mu   sync.Mutex // protects logs
	logs map[string]*ring

	dmu      sync.Mutex // protects dedup and appends
	dedup    map[string]*dedupEntry
	appends  int       // since the last sweep of expired entries
	lastSwep time.Time // of dedup and logs
}

// ring is one topic's log. Its mu is held while an event is numbered and
// delivered, so that every subscriber receives the topic in offset order.
type ring struct {
	mu     sync.Mutex // protects the fields below
	events []*hub.Event
	start  int    // index of the oldest event in events
	latest uint64 // offset of the newest event
}

// dedupEntry is an Append that happened, or is happening (done open).
type dedupEntry struct {
	done    chan struct{}
	pos     hub.Position
	ok      bool // the Append succeeded; pos is valid
	expires time.Time
}

func newHistory() history {
	var b [8]byte
	rand.Read(b[:])
	return history{epoch: hex.EncodeToString(b[:]), now: time.Now,
		logs: make(map[string]*ring), dedup: make(map[string]*dedupEntry)}
}

// Append implements hub.Log.
func (b *Broker) Append(ctx context.Context, topic string, ev *hub.Event, opt hub.AppendOptions) (hub.Receipt, error) {
	if opt.DedupKey == "" {
		return hub.Receipt{Position: b.appendLogged(ctx, topic, ev, opt.Log)}, nil
	}
	h := &b.history
	for {
		h.dmu.Lock()
		h.sweep()
		e := h.dedup[opt.DedupKey]
		if e != nil && e.ok && h.now().Before(e.expires) {
			h.dmu.Unlock()
			return hub.Receipt{Position: e.pos, Duplicate: true}, nil
		}
		if e != nil && !e.ok && e.done != nil {
			done := e.done // read under dmu: the appender sets it to nil once done
			h.dmu.Unlock()
			select { // the same key is being appended: wait for its answer
			case <-done:
				continue
			case <-ctx.Done():
				return hub.Receipt{}, ctx.Err()
			}
		}
		e = &dedupEntry{done: make(chan struct{})}
		h.dedup[opt.DedupKey] = e
		h.dmu.Unlock()

		pos := b.appendLogged(ctx, topic, ev, opt.Log)
		h.dmu.Lock()
		e.pos, e.ok, e.expires = pos, true, h.now().Add(opt.DedupTTL)
		close(e.done)
		e.done = nil
		h.dmu.Unlock()
		return hub.Receipt{Position: pos}, nil
	}
}

// appendLogged numbers ev in topic's log, if it is logged, and delivers it.
func (b *Broker) appendLogged(ctx context.Context, topic string, ev *hub.Event, lim hub.LogLimits) hub.Position {
	if lim.Size <= 0 {
		_ = b.Publish(ctx, topic, ev)
		return hub.Position{}
	}
	lim = lim.WithDefaults()
	r := b.history.ring(topic, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest++
	ev.Offset, ev.Epoch = r.latest, b.history.epoch
	if len(r.events) < lim.Size {
		r.events = append(r.events, ev)
		b.history.held.Add(1)
	} else {
		// A ring whose size shrank keeps its capacity; the reader bounds it.
		b.history.heldBytes.Add(-int64(len(r.events[r.start].Message)))
		r.events[r.start] = ev
		r.start = (r.start + 1) % len(r.events)
	}
	b.history.heldBytes.Add(int64(len(ev.Message)))
	_ = b.Publish(ctx, topic, ev)
	return hub.Position{Offset: ev.Offset, Epoch: ev.Epoch}
}

func (h *history) ring(topic string, create bool) *ring {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.logs[topic]
	if r == nil && create {
		r = &ring{}
		h.logs[topic] = r
	}
	return r
}

// ReadLog implements hub.Log.
func (b *Broker) ReadLog(_ context.Context, topic string, q hub.LogQuery) (hub.LogPage, error) {
	h := &b.history
	page := hub.LogPage{Position: hub.Position{Epoch: h.epoch}}
	r := h.ring(topic, false)
	if r == nil {
		return page, nil
	}
	now := h.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	page.Offset = r.latest
	if q.Limit <= 0 {
		return page, nil
	}
	n := len(r.events)
	for i := range n {
		ev := r.events[(r.start+i)%n]
		if (q.Tail || ev.Offset > q.After) && q.Limits.Keep(ev.Offset, r.latest, ev.Time, now) {
			page.Events = append(page.Events, ev)
		}
	}
	if len(page.Events) > q.Limit {
		if q.Tail {
			page.Events = page.Events[len(page.Events)-q.Limit:]
		} else {
			page.Events = page.Events[:q.Limit]
		}
	}
	return page, nil
}

// sweep forgets expired dedup entries, and the events of logs whose newest
// has outlived the default TTL, every so often. The caller holds dmu.
func (h *history) sweep() {
	h.appends++
	now := h.now()
	if h.appends < 1024 && now.Sub(h.lastSwep) < time.Minute {
		return
	}
	h.appends, h.lastSwep = 0, now
	for k, e := range h.dedup {
		if e.ok && now.After(e.expires) {
			delete(h.dedup, k)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.logs {
		// The ring keeps its latest offset: a log that started again from 1
		// would need another epoch.
		r.mu.Lock()
		if n := len(r.events); n > 0 && now.Sub(r.events[(r.start+n-1)%n].Time) > hub.DefaultHistoryTTL {
			h.forget(r.events)
			r.events, r.start = nil, 0
		}
		r.mu.Unlock()
	}
}

var _ hub.HistoryStats = (*Broker)(nil)

// forget takes events out of the history's size. The caller holds their
// ring's mu.
func (h *history) forget(events []*hub.Event) {
	var n int64
	for _, ev := range events {
		n += int64(len(ev.Message))
	}
	h.held.Add(-int64(len(events)))
	h.heldBytes.Add(-n)
}

// HistorySize implements hub.HistoryStats: the events held in every room's
// and inbox's ring, and the bytes of their text. Events past their TTL are
// held, and counted, until a sweep drops their ring (run by appends with a
// dedup key, at most once a minute unless 1024 of them came): the size is
// what the broker holds, not what a reader may still get.
func (b *Broker) HistorySize() (messages, bytes int64) {
	return b.history.held.Load(), b.history.heldBytes.Load()
}
