package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A node shuts down as a lame duck, so that a rolling restart of a cluster
// loses nobody and causes no reconnect storm:
//
//  1. it stops accepting: both listeners close, so new connections are
//     refused and clients go to another node; the connections it already
//     has go on;
//  2. it reports NOT_SERVING on grpc.health.v1 (watchers are told at
//     once), and /health answers 503 on those connections. In this order,
//     as DESIGN.md has it: whoever hears NOT_SERVING finds the node no
//     longer accepting;
//  3. it ends its sessions spread evenly over ShutdownSpread with
//     hub.DisconnectRestart: WebSocket close 1012 "service restart", gRPC
//     Unavailable;
//  4. once every session has left the broker (its rooms and presence
//     updated for the rest of the cluster), the gRPC and HTTP servers stop;
//     Serve returns and the caller closes the broker, last.
//
// ShutdownTimeout, counted from the start, or Force ends it sooner: the
// sessions not yet told are told at once and the servers stop without
// waiting for their clients.

// stopGrace is how long the gRPC server may take, once the sessions are
// over, to finish the calls in flight before it is stopped: a health Watch
// never ends by itself.
const stopGrace = time.Second

// shutdownDefaults fills in and checks the shutdown settings.
func (c *Config) shutdownDefaults() error {
	if c.ShutdownSpread < 0 || c.ShutdownTimeout < 0 {
		return errors.New("shutdown spread and timeout must not be negative")
	}
	if c.ShutdownSpread == 0 {
		c.ShutdownSpread = DefaultShutdownSpread
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = max(DefaultShutdownTimeout, 2*c.ShutdownSpread)
	}
	if c.ShutdownTimeout <= c.ShutdownSpread {
		return fmt.Errorf("shutdown timeout %v must exceed the shutdown spread %v", c.ShutdownTimeout, c.ShutdownSpread)
	}
	return nil
}

// stopState is where a node is in its shutdown.
type stopState struct {
	stopping  atomic.Bool   // the shutdown has begun
	force     chan struct{} // closed by Force
	forceOnce sync.Once
}

func newStopState() stopState { return stopState{force: make(chan struct{})} }

// Force ends a shutdown under way, or the next one, at once: sessions not
// yet told are told now and the servers stop without waiting for their
// clients. A second SIGTERM calls it. Safe to call more than once and from
// any goroutine.
func (n *Node) Force() {
	n.stop.forceOnce.Do(func() { close(n.stop.force) })
}

// shutdown runs the lame-duck shutdown described above. listeners are the
// ones Serve was given.
func (n *Node) shutdown(httpSrv *http.Server, listeners []net.Listener) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop.force:
			n.log.Warn("shutdown forced")
			cancel()
		case <-ctx.Done():
		}
	}()

	for _, l := range listeners {
		l.Close()
	}
	n.stop.stopping.Store(true)
	n.health.Shutdown()
	n.log.Info("lame duck: not serving, not accepting; ending sessions", "sessions", n.hub.Sessions(), "spread", n.cfg.ShutdownSpread)

	n.hub.Shutdown(ctx, n.cfg.ShutdownSpread)
	n.log.Debug("sessions told", "took", time.Since(start))
	n.bridge.Shutdown(ctx) // WebSockets are hijacked: the HTTP server cannot close them
	n.log.Debug("bridge closed", "took", time.Since(start))
	n.awaitSessions(ctx)
	n.log.Debug("sessions gone", "took", time.Since(start))

	stopped := make(chan struct{})
	go func() { n.grpc.GracefulStop(); close(stopped) }()
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-stopped:
	case <-grace.C:
		n.grpc.Stop()
		<-stopped
	case <-ctx.Done():
		n.grpc.Stop()
		<-stopped
	}
	n.log.Debug("grpc stopped", "took", time.Since(start))
	if ctx.Err() != nil {
		httpSrv.Close()
	} else if err := httpSrv.Shutdown(ctx); err != nil {
		httpSrv.Close()
	}
	n.log.Info("shut down", "took", time.Since(start).Round(time.Millisecond), "sessions_left", n.hub.Sessions())
}

// awaitSessions waits until every session has left the hub and the broker,
// or ctx is done. Sessions leave as their transports end: the wait is
// short once they have all been told.
func (n *Node) awaitSessions(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n.hub.Sessions() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			n.log.Warn("shutdown timed out with sessions left", "sessions", n.hub.Sessions())
			return
		}
	}
}
