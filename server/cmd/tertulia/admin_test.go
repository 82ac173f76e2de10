package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/node/nodetest"
)

// TestAdminAddrServesMetricsAndPprof runs `serve --admin-addr` in process,
// with JSON logs, and finds /metrics and pprof on the admin address only.
func TestAdminAddrServesMetricsAndPprof(t *testing.T) {
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
			"--admin-addr", "127.0.0.1:0", "--log-format", "json"}, outW, errW)
		outW.Close()
		errW.Close()
	}()
	var readers sync.WaitGroup
	defer readers.Wait() // after the server has stopped and its output ended
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("serve did not stop")
		}
	}()

	httpAddr := make(chan string, 1)
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if m := welcomeAddr.FindStringSubmatch(sc.Text()); m != nil && m[2] != "" {
				httpAddr <- m[2]
			}
		}
	}()
	adminAddr := make(chan string, 1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("--log-format json wrote %q: %v", sc.Text(), err)
				continue
			}
			if rec["msg"] == "admin" {
				adminAddr <- rec["addr"].(string)
			}
		}
	}()
	var main, admin string
	for main == "" || admin == "" {
		select {
		case main = <-httpAddr:
		case admin = <-adminAddr:
		case <-time.After(10 * time.Second):
			t.Fatalf("serve did not tell its addresses (http %q, admin %q)", main, admin)
		}
	}

	m := nodetest.Scrape(t, "http://"+admin+"/metrics")
	if _, ok := m.Value("tertulia_connections", "transport", "websocket"); !ok {
		t.Errorf("admin /metrics has no tertulia_connections{transport=websocket}")
	}
	for _, c := range []struct {
		url, contains string
		status        int
	}{
		{"http://" + admin + "/debug/pprof/", "goroutine", 200},
		{"http://" + main + "/metrics", "", 404},
		{"http://" + main + "/health", "healthy", 200},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s = %d, want %d containing %q", c.url, resp.StatusCode, c.status, c.contains)
		}
	}
}
