package hub

import (
	"testing"
	"time"
)

// BenchmarkBreachingPasses measures the check every message that passes
// makes, from every core at once: it takes no lock.
func BenchmarkBreachingPasses(b *testing.B) {
	l := newSessionLimits("", nil)
	past := time.Now().Add(-time.Minute)
	l.msgBreach.Store(&past)
	b.RunParallel(func(pb *testing.PB) {
		now := time.Now()
		for pb.Next() {
			if l.breaching(now) {
				b.Error("breaching a minute after the last breach")
				return
			}
		}
	})
}
