package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Reconnect storm bounds: a client retries a failed reconnect at most
// stormAttempts times in all, waiting about stormBackoff, doubled each time
// up to stormMaxBackoff, with jitter, as a well-behaved client would: about
// 7 s in all, time for a restarted server to come back.
const (
	stormAttempts   = 8
	stormBackoff    = 100 * time.Millisecond
	stormMaxBackoff = 2 * time.Second
)

// reconnect: Conns users connected and joined to Room, then every
// connection closed at once and every one reconnected and re-joined at once,
// as after a server restart, or after a real one with Config.Restart; then a
// fanout for Duration shows each of them is back in the room and misses
// nothing.
func (r *runner) reconnect(ctx context.Context, res *Result) error {
	cfg := r.cfg
	fmt.Fprintf(cfg.Progress, "reconnect: %d connections in %s over %s\n", cfg.Conns, cfg.Room, r.d.name())
	if err := r.setUp(ctx, res, func(int) string { return cfg.Room }); err != nil {
		return err
	}
	sleep(ctx, settle)

	// A connection the server already ended would not be counted once
	// replaced: stop here instead.
	if n, first := r.dropped(); n > 0 {
		res.Dropped, res.FirstDrop = n, first
		return fmt.Errorf("%d connections dropped before the storm: first: %s", n, first)
	}
	r.mu.Lock()
	old := r.clients
	r.clients = make([]*client, len(old))
	r.mu.Unlock()
	tctx, cancelTimeout := context.WithTimeoutCause(ctx, cfg.SetupTimeout,
		fmt.Errorf("reconnect storm of %d connections took over %v", len(old), cfg.SetupTimeout))
	defer cancelTimeout()
	sctx, cancel := context.WithCancelCause(tctx) // a failed restart ends the storm at once
	defer cancel(nil)
	var start time.Time
	var stormSrv procStats
	var restarted chan restart
	if cfg.Restart == nil {
		fmt.Fprintf(cfg.Progress, "reconnect: closing %d connections at once\n", len(old))
		start = time.Now()
		all(len(old), func(i int) {
			if old[i] != nil {
				old[i].c.close()
			}
		})
		closeDialers(r.d) // over gRPC, the TCP connections go too
		res.StormCloseSec = time.Since(start).Seconds()
		fmt.Fprintf(cfg.Progress, "reconnect: reconnecting %d connections at once\n", len(old))
		stormSrv = startStats(r.serverPID)
		start = time.Now()
	} else {
		// The server goes with every connection at once, and each client
		// reconnects when it sees its own end, while the server is still
		// starting: the storm a restart brings, timed from its start.
		fmt.Fprintf(cfg.Progress, "reconnect: restarting the server under %d connections\n", len(old))
		start = time.Now()
		restarted = make(chan restart, 1)
		go func() {
			pid, err := cfg.Restart(sctx)
			if err != nil {
				cancel(fmt.Errorf("restart: %w", err))
			}
			restarted <- restart{pid, err, time.Since(start)}
		}()
	}
	stormTool := startStats(os.Getpid())
	var failed, retries atomic.Int64
	var firstErr, firstRetry atomic.Pointer[error]
	all(len(old), func(i int) {
		if restarted != nil && !r.awaitEnd(sctx, old[i]) {
			err := fmt.Errorf("connection %d outlived the restart: %w", i, context.Cause(sctx))
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		cl, n, err := r.rejoin(sctx, i, &firstRetry)
		retries.Add(int64(n))
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		r.mu.Lock()
		r.clients[i] = cl
		r.mu.Unlock()
	})
	res.ReconnectSec = time.Since(start).Seconds()
	if restarted != nil {
		rs := <-restarted
		if rs.err != nil {
			return fmt.Errorf("restart: %w", rs.err)
		}
		// The rest of the run reads the new server; all its CPU so far is
		// the storm's, its start-up too.
		r.serverPID, stormSrv = rs.pid, procStats{pid: rs.pid, start: start}
		res.RestartSec = rs.took.Seconds()
		fmt.Fprintf(cfg.Progress, "reconnect: the server was back in %.2fs\n", res.RestartSec)
	}
	setupCPU(res, stormSrv, stormTool, len(old)-int(failed.Load()))
	res.ReconnectFailed, res.ReconnectRetries = failed.Load(), retries.Load()
	fmt.Fprintf(cfg.Progress, "reconnect: %d re-joined in %.2fs, %d failed, %d retries\n",
		int64(len(old))-res.ReconnectFailed, res.ReconnectSec, res.ReconnectFailed, res.ReconnectRetries)
	if p := firstRetry.Load(); p != nil {
		fmt.Fprintf(cfg.Progress, "reconnect: the first retry followed: %v\n", *p)
	}
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("reconnect storm: %d of %d did not re-join: first: %w", res.ReconnectFailed, len(old), *p)
	}
	return r.publishToAll(ctx, res, false)
}

// restart is what Config.Restart returned: the new server's process id, or
// why there is none.
type restart struct {
	pid  int
	err  error
	took time.Duration // from the kill to the new server answering
}

// awaitEnd waits until the connection of cl (nil: none) has ended, as the
// server's restart ends it, and reports whether it did before ctx ended.
func (r *runner) awaitEnd(ctx context.Context, cl *client) bool {
	if cl == nil {
		return true
	}
	select {
	case <-cl.m.gone:
		cl.c.close() // the reader is done; this lets the socket go
		return true
	case <-ctx.Done():
		return false
	}
}

// rejoin reconnects connection i as its user and re-joins Room, retrying
// with backoff; it returns the connection and how many retries it took, and
// keeps in firstRetry the first error that was retried, if none is there.
func (r *runner) rejoin(ctx context.Context, i int, firstRetry *atomic.Pointer[error]) (*client, int, error) {
	wait := stormBackoff
	for attempt := 1; ; attempt++ {
		cl, err := r.open(ctx, r.user(i), r.cfg.Room, "r"+strconv.Itoa(i), r.hist)
		if err == nil || attempt == stormAttempts || ctx.Err() != nil {
			return cl, attempt - 1, err
		}
		firstRetry.CompareAndSwap(nil, &err)
		sleep(ctx, wait/2+rand.N(wait)) // jitter: 0.5 to 1.5 times wait
		wait = min(2*wait, stormMaxBackoff)
	}
}

// all calls f(i) for i in [0, n), every call in its own goroutine at once,
// and waits for them. n is bounded by Config.Conns.
func all(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}
