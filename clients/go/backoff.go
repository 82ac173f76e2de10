package client

import (
	"math/rand/v2"
	"time"
)

// Backoff is how long a Reconnecting session waits before each attempt to
// connect: a random time in [d/2, d), where d starts at Min and doubles with
// each failed attempt up to Max. The randomness spreads the clients of a
// node that restarts over time, so that the next node is not hit by all of
// them in the same instant. It is also the wait before a Reconnecting
// session sends again, on the same connection, what the server refused for
// now (unavailable, rate_limited): n counts the resends in a row that got
// nothing through, and a wait after rate_limited is at least a second.
type Backoff struct {
	// Min is the first d. Default 250ms.
	Min time.Duration
	// Max bounds d. Default 10s.
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 250 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = max(10*time.Second, b.Min)
	}
	return b
}

// Delay is the wait before attempt n (0 for the first attempt after a
// connection ended).
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := b.Max
	if n < 32 && b.Min<<n < b.Max && b.Min<<n > 0 {
		d = b.Min << n
	}
	return d/2 + rand.N(d/2+1)
}
