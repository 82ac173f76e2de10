package load

import (
	"strconv"
	"time"
)

// PayloadSize is the size of every chat message the tool publishes.
const PayloadSize = 64

// stampPayload fills p (PayloadSize bytes) with the send time t and seq as
// decimal digits, padded with '.', so that any wire format carries them as
// plain text: "1764142800123456789 42 ......".
func stampPayload(p []byte, t time.Time, seq uint64) []byte {
	p = p[:0]
	p = strconv.AppendInt(p, t.UnixNano(), 10)
	p = append(p, ' ')
	p = strconv.AppendUint(p, seq, 10)
	p = append(p, ' ')
	for len(p) < PayloadSize {
		p = append(p, '.')
	}
	return p
}

// payloadTime reads the send time from the start of a payload; ok is false
// if the payload does not start with one, as for messages from others.
func payloadTime[T string | []byte](p T) (unixNano int64, ok bool) {
	var v int64
	n := 0
	for ; n < len(p) && n < 19; n++ {
		c := p[n]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	if n < 18 || (n < len(p) && p[n] != ' ') {
		return 0, false
	}
	return v, true
}
