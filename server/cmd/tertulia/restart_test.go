package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
)

// The reconnect storm of a real restart: `tertulia bench --restart` kills
// the server with SIGKILL under 40 connections and starts it again, every
// client reconnects and re-joins by itself, and each then receives every
// message published after the storm. The server it started is stopped
// once the run is over.
func TestBenchRestartsTheServerForTheStorm(t *testing.T) {
	bin := buildBinary(t)
	const secret = "restart-storm-secret-0123456789"
	limitsOff := []string{"--jwt-secret", secret, "--log-level", "warn", "--limit-messages-per-second", "0", "--limit-messages-burst", "0",
		"--limit-user-messages-per-second", "0", "--limit-joins-per-second", "0", "--limit-conns-per-ip", "0", "--limit-conns-per-user", "0"}
	p := startServe(t, bin, nil, limitsOff...)
	serve := strings.Join(append([]string{bin, "serve", "--http-addr", p.httpAddr, "--grpc-addr", p.grpcAddr}, limitsOff...), " ")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A file, not a buffer: the restarted server writes to it too.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var stdout bytes.Buffer
	err = runBench(ctx, []string{"--scenario", "reconnect", "--conns", "40", "--rate", "40", "--duration", "500ms",
		"--http-addr", p.httpAddr, "--grpc-addr", p.grpcAddr, "--jwt-secret", secret,
		"--server-pid", strconv.Itoa(p.cmd.Process.Pid), "--restart", serve}, &stdout, stderr)
	if err != nil {
		out, _ := os.ReadFile(stderr.Name())
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var res load.Result
	line := stdout.String()[strings.LastIndex(stdout.String(), "\n{")+1:]
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("bench result %q: %v", line, err)
	}
	if res.RestartSec <= 0 || res.ReconnectSec < res.RestartSec {
		t.Errorf("got restart %vs, all re-joined %vs after the kill, want 0 < restart <= re-joined", res.RestartSec, res.ReconnectSec)
	}
	if res.Connected != 40 || res.ReconnectFailed != 0 || res.Dropped != 0 {
		t.Errorf("got %d connected, %d failed to re-join, %d dropped; want 40, 0, 0", res.Connected, res.ReconnectFailed, res.Dropped)
	}
	if res.Expected == 0 || res.Delivered != res.Expected || res.Lost != 0 || res.Extra != 0 {
		t.Errorf("got %d of %d deliveries (%d lost, %d extra) after the storm, want all, each once", res.Delivered, res.Expected, res.Lost, res.Extra)
	}

	var ee *exec.ExitError
	if err := <-p.exited; !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the first server ended with %v, want killed by SIGKILL", err)
	}
	p.exited <- nil // for the cleanup
	if resp, err := http.Get("http://" + p.httpAddr + "/health"); err == nil {
		resp.Body.Close()
		t.Errorf("the restarted server still answers after the run: want it stopped")
	}
}
