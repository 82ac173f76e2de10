package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
)

// lines is a log that ends ctx at its first line.
type lines struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancel()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// A node refused because its node id is held by a live broker says so,
// not that Redis is unreachable. (The command draws a random id, so this
// takes a NodeID set by hand.)
func TestConnectRedisTellsANodeIDInUse(t *testing.T) {
	srv := redistest.Start(t)
	cfg, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeID = "n1"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	held, err := redis.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	out := &lines{cancel: cancel}
	if b, err := connectRedis(ctx, cfg, slog.New(slog.NewTextHandler(out, nil))); err == nil {
		b.Close()
		t.Fatal("a second broker with node id n1 started")
	}
	if got := out.String(); !strings.Contains(got, "node id") || strings.Contains(got, "unreachable") {
		t.Errorf("logged %q; want the node id in use named, not redis unreachable", got)
	}
}
