package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/tertulia/tertulia/server/httpedge"
)

// startPprof serves net/http/pprof on addr until ctx ends, for profiling a
// node under load (`go tool pprof http://ADDR/debug/pprof/profile`). It is
// off unless --pprof-addr is given, and on its own listener so that the
// profiles are never reachable through the public HTTP port.
func startPprof(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpedge.ReadHeaderTimeout}
	go srv.Serve(lis)
	context.AfterFunc(ctx, func() { srv.Close() })
	log.Info("pprof", "addr", lis.Addr().String())
	return nil
}
