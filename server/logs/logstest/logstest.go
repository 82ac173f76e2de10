// Package logstest collects log output in tests: from a slog handler, a
// process's standard error, or any writer shared by several goroutines.
package logstest

import (
	"strings"
	"sync"
	"time"
)

// Buffer is an io.Writer safe for concurrent use that keeps what is
// written to it. Its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Await waits up to within for a line that holds every one of subs, and
// returns it ("" if none came).
func (l *Buffer) Await(within time.Duration, subs ...string) string {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		for line := range strings.Lines(l.String()) {
			if containsAll(line, subs) {
				return line
			}
		}
		if time.Now().After(deadline) {
			return ""
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
