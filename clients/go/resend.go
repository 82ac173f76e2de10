package client

import "time"

// resendTimer is how a Reconnecting session sends again, on a live
// connection, what the server refused for now: a frame answered by an error
// with code unavailable (its broker out of reach) or rate_limited. "No ack
// means not accepted: resending is safe" (DESIGN.md), and the server
// delivers an id once, so the refused frames go again, with their ids,
// after a wait.
//
// One timer for every refused frame: each resend of k pending frames may
// bring back k refusals, and a timer each would multiply the resends by k
// every round, against a server that is already refusing or limiting. The
// wait is the session's Backoff (jittered, bounded by its Max), its attempt
// counting the rounds since the last ack.
//
// A resendTimer belongs to the goroutine that serves one connection: it is
// not safe for concurrent use, and it starts no goroutine (that goroutine
// selects on C), so stopping it, or dropping it with its connection,
// leaves nothing behind. The zero value with wait set is ready.
type resendTimer struct {
	wait   Backoff
	timer  *time.Timer // nil when not armed
	rounds int         // timers armed since the last ack
}

// arm starts the wait before the next resend, unless one is under way.
func (t *resendTimer) arm() {
	if t.timer != nil {
		return
	}
	t.timer = time.NewTimer(t.wait.Delay(t.rounds))
	t.rounds++
}

// C delivers once when the pending frames are due; it is nil (it never
// delivers) when the timer is not armed.
func (t *resendTimer) C() <-chan time.Time {
	if t.timer == nil {
		return nil
	}
	return t.timer.C
}

// fired disarms the timer once C has delivered: the next refusal arms it
// again, for a longer wait.
func (t *resendTimer) fired() { t.timer = nil }

// acked starts the backoff over: the server takes frames again.
func (t *resendTimer) acked() { t.rounds = 0 }

// stop disarms the timer, if armed.
func (t *resendTimer) stop() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
}
