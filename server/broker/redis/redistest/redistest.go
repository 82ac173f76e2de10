// Package redistest runs a real redis-server for a test, on a free loopback
// port, with no persistence. It can be stopped and started again on the same
// port, as a Redis outage would look to the nodes using it.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process. Its methods are not safe for
// concurrent use; the test goroutine drives it.
type Server struct {
	// Addr is host:port, always on 127.0.0.1.
	Addr string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *lockedBuffer
}

// Start runs redis-server until the test ends. It fails the test if
// redis-server is not installed or does not answer in time.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found (make deps installs it): %v", err)
	}
	s := &Server{dir: t.TempDir()}
	// The free port is found by listening on :0 and closing; another process
	// may take it before redis-server does, so a few attempts are allowed.
	var err error
	for range 3 {
		s.Addr = freeAddr(t)
		if err = s.start(); err == nil {
			t.Cleanup(func() { s.Stop(t) })
			return s
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills redis-server (SIGKILL: to its clients it vanishes, as in a
// crash) and waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		t.Errorf("redis-server %s did not exit within %v", s.Addr, startTimeout)
	}
	s.cmd = nil
}

// Pause stops redis-server with SIGSTOP: its port still accepts
// connections and its clients' writes, but nothing is answered, as with a
// hung or overloaded Redis, until Resume. The end of the test resumes it.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
}

// Resume continues a paused redis-server with SIGCONT: it answers again,
// its data intact, and runs what its clients sent meanwhile.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil {
		t.Fatalf("redis-server %s is not running", s.Addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal redis-server %s: %v", s.Addr, err)
	}
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart redis-server on %s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command("redis-server",
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", "", "--loglevel", "warning")
	s.out = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	if err := s.waitReady(); err != nil {
		_ = cmd.Process.Kill()
		<-done
		s.cmd = nil
		return fmt.Errorf("%w; redis-server said: %s", err, bytes.TrimSpace(s.out.Bytes()))
	}
	return nil
}

// waitReady waits until redis-server answers PING, or has exited.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on %s exited", s.Addr)
		default:
		}
		if ping(s.Addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer PING within %v", s.Addr, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// lockedBuffer collects redis-server's output, written by exec's copier
// goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}
