package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tertulia/tertulia/server/node"
)

// onSignals returns a context cancelled by the first SIGTERM or interrupt,
// which starts n's lame-duck shutdown; a second one forces its end. stop
// releases the signals.
func onSignals(ctx context.Context, n *node.Node, log *slog.Logger) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			log.Info("shutting down", "signal", sig.String())
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			log.Warn("second signal: forcing the shutdown", "signal", sig.String())
			n.Force()
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
