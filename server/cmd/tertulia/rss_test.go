package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vmRSS is the resident set of process pid, in KiB, from /proc.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// Four connections each streaming a 256 MiB header line, to the WebSocket
// endpoint and to plain HTTP, leave a separately started server's RSS
// within a few MiB of where it was: every one is refused at its bound.
func TestHugeHeaderLinesDoNotGrowRSS(t *testing.T) {
	bin := buildBinary(t)
	p := startServe(t, bin, nil, "--dev")
	pid := p.cmd.Process.Pid
	before := vmRSS(t, pid)
	var wg sync.WaitGroup
	sent := make([]int, 4)
	for i, path := range []string{"/api/v1/ws", "/api/v1/ws/authenticated", "/health", "/api/v1/websocket/stats"} {
		wg.Go(func() {
			nc, err := net.Dial("tcp", p.httpAddr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: x\r\nX-Big: ")
			chunk := []byte(strings.Repeat("a", 64<<10))
			for sent[i] < 256<<20 {
				n, err := nc.Write(chunk)
				sent[i] += n
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	after := vmRSS(t, pid)
	for i, n := range sent {
		if n >= 256<<20 {
			t.Errorf("connection %d: the server took all 256 MiB of the line, want it refused at its bound", i)
		}
	}
	if grew := after - before; grew > 4<<10 {
		t.Errorf("RSS grew %d KiB (%d -> %d KiB), want at most 4 MiB", grew, before, after)
	}
	t.Logf("RSS %d -> %d KiB; each client wrote at most %d KiB before it was cut off", before, after, max(sent[0], sent[1], sent[2], sent[3])>>10)
}
