package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one reading of the server under soak, from its /metrics (and
// its RSS from /proc when the soak knows its process).
type Sample struct {
	At          float64 `json:"at_s"` // seconds since the soak began
	RSSBytes    float64 `json:"rss_bytes"`
	HeapBytes   float64 `json:"heap_alloc_bytes"` // live heap, once the soak has had the server collect garbage
	Goroutines  float64 `json:"goroutines"`
	Connections float64 `json:"connections"` // tertulia_connections, every transport
}

func (s Sample) String() string {
	return fmt.Sprintf("t=%4.0fs  rss %7.1f MiB  heap %7.1f MiB  goroutines %6.0f  connections %6.0f",
		s.At, s.RSSBytes/(1<<20), s.HeapBytes/(1<<20), s.Goroutines, s.Connections)
}

// sampler reads Samples of one server.
type sampler struct {
	metricsURL string
	gcURL      string // optional: fetched before the last sample to run a GC
	pid        int    // optional: RSS from /proc/<pid>
	start      time.Time
	http       *http.Client
}

// read takes one sample.
func (s *sampler) read(ctx context.Context) (Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return Sample{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape %s: %w", s.metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, fmt.Errorf("scrape %s: status %d", s.metricsURL, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape %s: %w", s.metricsURL, err)
	}
	sum := func(name string) float64 {
		var v float64
		for _, m := range families[name].GetMetric() {
			v += m.GetGauge().GetValue() + m.GetUntyped().GetValue() + m.GetCounter().GetValue()
		}
		return v
	}
	out := Sample{
		At:          time.Since(s.start).Seconds(),
		RSSBytes:    sum("process_resident_memory_bytes"),
		HeapBytes:   sum("go_memstats_heap_alloc_bytes"),
		Goroutines:  sum("go_goroutines"),
		Connections: sum("tertulia_connections"),
	}
	if s.pid > 0 {
		if r, err := rss(s.pid); err == nil {
			out.RSSBytes = float64(r)
		}
	}
	return out, nil
}

// collectGarbage asks the server to run a GC (pprof's heap profile with
// gc=1), so that the heap read next is what is live, not what is not yet
// swept. Without gcURL it does nothing.
func (s *sampler) collectGarbage(ctx context.Context) error {
	if s.gcURL == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.gcURL, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("gc %s: %w", s.gcURL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// Thresholds say how near its baseline the server must come back once the
// soak's connections are gone. The defaults:
//
//   - goroutines: at most baseline + 300. The WebSocket bridge keeps up to
//     256 idle workers warm, and how many wait at a given moment depends on
//     the last bursts (60 s soaks saw 118 before and 141 after); a leak of
//     one goroutine per connection would add thousands;
//   - live heap (after a GC when the soak can ask for one): at most
//     1.5 × baseline + 16 MiB (pools and maps that grew do not all shrink);
//   - RSS: at most baseline + half the growth up to the peak + 32 MiB: the
//     Go runtime hands freed memory back to the system slowly, so RSS is
//     required to have come down, not to be back where it began.
type Thresholds struct {
	ExtraGoroutines float64
	HeapFactor      float64
	HeapExtraBytes  float64
	RSSExtraBytes   float64
}

func (t Thresholds) withDefaults() Thresholds {
	if t.ExtraGoroutines <= 0 {
		t.ExtraGoroutines = 300
	}
	if t.HeapFactor <= 0 {
		t.HeapFactor = 1.5
	}
	if t.HeapExtraBytes <= 0 {
		t.HeapExtraBytes = 16 << 20
	}
	if t.RSSExtraBytes <= 0 {
		t.RSSExtraBytes = 32 << 20
	}
	return t
}

// Check compares after with base (and peak, for RSS) and returns one
// complaint per figure that did not come back near its baseline.
func (t Thresholds) Check(base, peak, after Sample) []string {
	t = t.withDefaults()
	var bad []string
	if limit := base.Goroutines + t.ExtraGoroutines; after.Goroutines > limit {
		bad = append(bad, fmt.Sprintf("goroutines %.0f after, want at most %.0f (baseline %.0f + %.0f)", after.Goroutines, limit, base.Goroutines, t.ExtraGoroutines))
	}
	if limit := base.HeapBytes*t.HeapFactor + t.HeapExtraBytes; after.HeapBytes > limit {
		bad = append(bad, fmt.Sprintf("heap %.1f MiB after, want at most %.1f MiB (baseline %.1f MiB × %g + %.0f MiB)",
			after.HeapBytes/(1<<20), limit/(1<<20), base.HeapBytes/(1<<20), t.HeapFactor, t.HeapExtraBytes/(1<<20)))
	}
	if limit := base.RSSBytes + max(0, peak.RSSBytes-base.RSSBytes)/2 + t.RSSExtraBytes; after.RSSBytes > limit {
		bad = append(bad, fmt.Sprintf("RSS %.1f MiB after, want at most %.1f MiB (baseline %.1f MiB + half the growth to the peak %.1f MiB + %.0f MiB)",
			after.RSSBytes/(1<<20), limit/(1<<20), base.RSSBytes/(1<<20), peak.RSSBytes/(1<<20), t.RSSExtraBytes/(1<<20)))
	}
	if after.Connections > 0 {
		bad = append(bad, fmt.Sprintf("%.0f connections left on the server, want 0", after.Connections))
	}
	return bad
}
