package hub

import (
	"context"
	"time"
)

// Shutdown refuses new sessions (Open returns ErrShuttingDown) and ends
// every session of this node with DisconnectRestart, spread evenly over
// spread: with n sessions, one every spread/n, the first at once, so that
// their clients do not all reconnect elsewhere in the same instant (a
// reconnect storm). Each session gets what was queued for it before its
// close. Once ctx is done, the sessions not yet told are told at once.
// Shutdown returns when every session has been told; they leave the broker
// as their transports end them (see Sessions).
func (h *Hub) Shutdown(ctx context.Context, spread time.Duration) {
	h.closing.Store(true)
	sessions := h.localSessions()
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, s := range sessions {
		wait := time.Until(start.Add(spreadAt(i, len(sessions), spread)))
		if wait > 0 && ctx.Err() == nil {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		s.out.drain(disconnectRestart)
	}
}

// spreadAt is when, after the start of a shutdown, the i-th of n sessions is
// told: evenly over spread, the first at once, the last at spread*(n-1)/n.
func spreadAt(i, n int, spread time.Duration) time.Duration {
	if n <= 1 || spread <= 0 {
		return 0
	}
	return time.Duration(int64(spread) / int64(n) * int64(i))
}

// Sessions is the number of sessions attached to this node: Shutdown is
// over for the broker once it is 0.
func (h *Hub) Sessions() int64 { return h.metrics.Sessions.Load() }
