package load

import (
	"strconv"
	"time"
)

// PayloadSize is the size of every chat message the tool publishes.
const PayloadSize = 64

// stampPayload fills p (PayloadSize bytes) with the send time t, the
// publisher's id pub and its sequence number seq (0, 1, ... for each
// publisher) as decimal digits, padded with '.', so that any wire format
// carries them as plain text: "1764142800123456789 3 42 ......". A
// subscriber tells every message apart by (pub, seq).
func stampPayload(p []byte, t time.Time, pub uint32, seq uint64) []byte {
	p = p[:0]
	p = strconv.AppendInt(p, t.UnixNano(), 10)
	p = append(p, ' ')
	p = strconv.AppendUint(p, uint64(pub), 10)
	p = append(p, ' ')
	p = strconv.AppendUint(p, seq, 10)
	p = append(p, ' ')
	for len(p) < PayloadSize {
		p = append(p, '.')
	}
	return p
}

// stamp is what stampPayload wrote.
type stamp struct {
	sent int64 // Unix ns
	pub  uint32
	seq  uint64
}

// readStamp reads what stampPayload wrote; ok is false if p does not start
// with it, as for messages from others.
func readStamp[T string | []byte](p T) (s stamp, ok bool) {
	sent, n := payloadDigits(p, 0, 19)
	if n < 18 || n >= len(p) || p[n] != ' ' {
		return stamp{}, false
	}
	pub, m := payloadDigits(p, n+1, 10)
	if m == n+1 || m >= len(p) || p[m] != ' ' || pub > 1<<32-1 {
		return stamp{}, false
	}
	seq, e := payloadDigits(p, m+1, 19)
	if e == m+1 || e >= len(p) || p[e] != ' ' {
		return stamp{}, false
	}
	return stamp{sent: int64(sent), pub: uint32(pub), seq: seq}, true
}

// payloadDigits reads at most limit decimal digits of p from off on; end is
// the offset after them.
func payloadDigits[T string | []byte](p T, off, limit int) (v uint64, end int) {
	end = off
	for ; end < len(p) && end-off < limit; end++ {
		c := p[end]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uint64(c-'0')
	}
	return v, end
}
