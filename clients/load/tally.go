package load

import (
	"sync/atomic"
	"time"
)

// seqTally is what one connection received, message by message: how many
// distinct messages (got) and how many copies of a message it already had
// (extra). A message is known by its publisher's id and sequence number
// (stampPayload), so a loss on one connection cannot be hidden by a
// duplicate on another.
//
// It rests on the server's order: a room's messages reach each connection
// in the order the server took them, so one publisher's messages, sent in
// order over one connection, arrive in sequence order. Each publisher's
// stream therefore needs only the next number it expects: a number at or
// above it is new (the numbers skipped are missing), one below it is a
// copy, unless it fills one of the last maxGaps gaps, which tolerates a
// little reordering. When more gaps open than that, the oldest is given up,
// and a message that fills it later is counted as extra. Memory is a few
// words per publisher heard from, however many messages: one stream, held
// inline, per subscriber of a fan-out (10,000 subscribers: under 1 MB);
// in the rooms scenario one per member of its room, the others in a map at
// about 75 bytes each (rooms of 10: under 1 KB a connection; one room of
// 1,000 publishing members: 75 MB).
//
// record is called by the connection's reader only; got, extra and last may
// be read from any goroutine.
type seqTally struct {
	got, extra atomic.Int64
	last       atomic.Int64 // Unix ns of the latest message read; 0 before the first

	one  seqStream             // the first publisher heard from (a fan-out has one)
	more map[uint32]*seqStream // the others
}

// seqStream is one publisher's messages as one connection received them.
type seqStream struct {
	pub  uint32
	used bool
	next uint64     // one past the highest sequence number received
	gaps []seqRange // numbers below next not received, oldest first; at most maxGaps
}

// seqRange is the sequence numbers [lo, hi).
type seqRange struct{ lo, hi uint64 }

// maxGaps bounds the gaps remembered per publisher: under the server's
// ordering there are none to fill, and a connection that keeps losing
// messages must not grow without bound.
const maxGaps = 8

// record counts the message s, read at now.
func (t *seqTally) record(s stamp, now time.Time) {
	t.last.Store(now.UnixNano())
	st := t.stream(s.pub)
	switch {
	case s.seq >= st.next:
		if s.seq > st.next {
			st.addGap(seqRange{st.next, s.seq})
		}
		st.next = s.seq + 1
		t.got.Add(1)
	case st.fill(s.seq):
		t.got.Add(1)
	default:
		t.extra.Add(1)
	}
}

// stream is publisher pub's stream, made on its first message.
func (t *seqTally) stream(pub uint32) *seqStream {
	if !t.one.used || t.one.pub == pub {
		t.one.used, t.one.pub = true, pub
		return &t.one
	}
	st := t.more[pub]
	if st == nil {
		if t.more == nil {
			t.more = make(map[uint32]*seqStream)
		}
		st = &seqStream{pub: pub, used: true}
		t.more[pub] = st
	}
	return st
}

// addGap remembers g as missing, giving up the oldest gap if there are too
// many.
func (st *seqStream) addGap(g seqRange) {
	if len(st.gaps) == maxGaps {
		st.gaps = append(st.gaps[:0], st.gaps[1:]...)
	}
	st.gaps = append(st.gaps, g)
}

// fill reports whether seq was missing, and if so takes it out of its gap.
func (st *seqStream) fill(seq uint64) bool {
	for i, g := range st.gaps {
		if seq < g.lo || seq >= g.hi {
			continue
		}
		switch {
		case g.hi-g.lo == 1:
			st.gaps = append(st.gaps[:i], st.gaps[i+1:]...)
		case seq == g.lo:
			st.gaps[i].lo++
		case seq == g.hi-1:
			st.gaps[i].hi--
		default: // split: the part above seq stays in place, the part below goes first
			st.gaps[i].lo = seq + 1
			below := seqRange{g.lo, seq}
			if len(st.gaps) == maxGaps {
				// No room: give up the oldest, which may be the part below.
				if i == 0 {
					return true
				}
				st.gaps = append(st.gaps[:0], st.gaps[1:]...)
				i--
			}
			st.gaps = append(st.gaps, seqRange{})
			copy(st.gaps[i+1:], st.gaps[i:])
			st.gaps[i] = below
		}
		return true
	}
	return false
}
