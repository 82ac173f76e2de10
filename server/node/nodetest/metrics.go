package nodetest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of /metrics, parsed by Prometheus' own parser.
type Metrics map[string]*dto.MetricFamily

// Scrape gets url (a /metrics endpoint) and parses it, failing the test if
// the answer is not 200 or not valid Prometheus text.
func Scrape(t testing.TB, url string) Metrics {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d, want 200", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not valid Prometheus text: %v", url, err)
	}
	return Metrics(families)
}

// Value is the value of the counter, gauge or untyped sample of family name
// whose labels include labels (name, value pairs), and whether there is one.
// For a histogram it is the sample count.
func (m Metrics) Value(name string, labels ...string) (float64, bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
next:
	for _, s := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range s.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		}
	}
	return 0, false
}
