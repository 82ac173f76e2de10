package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// restarter is `tertulia bench --restart CMD`: the reconnect storm of a
// real restart. It kills the server the run measures (--server-pid) with
// SIGKILL, as a crash or an OOM kill would, starts CMD in its place and
// waits until the new server answers /health. The server it started is
// its own to stop, once the run is over.
type restarter struct {
	cmdline  string    // run by sh -c, with exec: the shell becomes the server
	pid      int       // the server to kill
	health   string    // the new server's /health URL
	log      io.Writer // the new server's stdout and stderr
	progress io.Writer // one line per step
	cmd      *exec.Cmd // the server it started, if it did
	exited   chan struct{}
	// client asks the new server for /health, with a timeout: a server
	// that takes the connection and never answers must not hold the storm.
	client *http.Client
}

// restart kills the server, starts CMD and returns its process id once it
// serves.
func (r *restarter) restart(ctx context.Context) (int, error) {
	start := time.Now()
	if err := syscall.Kill(r.pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("kill server %d: %w", r.pid, err)
	}
	// Its listeners are free once it has exited.
	if err := poll(ctx, func() bool { return exited(r.pid) }); err != nil {
		return 0, fmt.Errorf("server %d did not exit: %w", r.pid, err)
	}
	fmt.Fprintf(r.progress, "restart: server %d killed, gone after %v\n", r.pid, time.Since(start).Round(time.Millisecond))
	r.cmd = exec.Command("sh", "-c", "exec "+r.cmdline)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.cmd = nil
		return 0, fmt.Errorf("start %q: %w", r.cmdline, err)
	}
	r.exited = make(chan struct{})
	go func() {
		r.cmd.Wait()
		close(r.exited)
	}()
	err := poll(ctx, func() bool {
		select {
		case <-r.exited:
			return true
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.health, nil)
		if err != nil {
			return false
		}
		resp, err := r.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-r.exited:
		return 0, fmt.Errorf("restarted server exited: %v", r.cmd.ProcessState)
	default:
	}
	if err != nil {
		return 0, fmt.Errorf("restarted server did not answer %s: %w", r.health, err)
	}
	fmt.Fprintf(r.progress, "restart: server %d serving after %v\n", r.cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
	return r.cmd.Process.Pid, nil
}

// stop ends the server restart started, if it did, as an operator would:
// SIGTERM, then SIGKILL if it has not ended within a minute.
func (r *restarter) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(time.Minute):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// exited reports whether process pid has ended and let its files go: it is
// gone, or a zombie not yet reaped by its parent with no thread left but
// its main one. (That one turns zombie before the others have ended, and
// the files they share, listeners included, close with the last one.)
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may
	// hold spaces: "pid (comm) S ...".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i >= 0 && !strings.HasPrefix(s[i+1:], " Z") && !strings.HasPrefix(s[i+1:], " X") {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err != nil || len(tasks) <= 1
}

// poll calls done every few milliseconds until it reports true or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}
