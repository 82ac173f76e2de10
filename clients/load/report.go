package load

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints results as an aligned table, one row per result.
func WriteTable(w io.Writer, results ...*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttransport\tconns\trate/s\tsecs\tdelivered/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\trefused\tlost\textra\tdropped\tconn/s\tsrv cpu%\ttool cpu%\tsrv µs/msg\ttool µs/msg\tsrv KiB/conn\tframes/write\treconnect s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Scenario, transportName(r), r.Conns, rate(r), r.Seconds, num(r.DeliveredSec),
			ms(r.P50, r), ms(r.P90, r), ms(r.P99, r), ms(r.Max, r),
			r.Refused, r.Lost, r.Extra, r.Dropped, num(r.ConnectSec), num(r.ServerCPU), r.ToolCPU,
			num(r.ServerCPUPerMsg), num(r.ToolCPUPerMsg), num(r.ServerRSSConn), num(r.FramesPerWrite), reconnect(r))
	}
	return tw.Flush()
}

// transportName is the transport, with the WebSocket client unless it is
// the own one.
func transportName(r *Result) string {
	if r.Client != "" && r.Client != "own" {
		return r.Transport + "/" + r.Client
	}
	return r.Transport
}

// rate is the publishing rate achieved, with the target beside it if it
// fell short by 5% or more.
func rate(r *Result) string {
	if r.Rate < 0.95*r.TargetRate {
		return num(r.Rate) + " of " + num(r.TargetRate)
	}
	return num(r.Rate)
}

// reconnect is how long the reconnect storm took, with its failures.
func reconnect(r *Result) string {
	switch {
	case r.ReconnectSec == 0:
		return "-"
	case r.ReconnectFailed > 0:
		return fmt.Sprintf("%.2f (%d failed)", r.ReconnectSec, r.ReconnectFailed)
	default:
		return fmt.Sprintf("%.2f", r.ReconnectSec)
	}
}

func num(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func ms(v float64, r *Result) string {
	if r.Delivered == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteJSON prints r as one line of JSON.
func WriteJSON(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteSVG draws the latency distribution of r as a histogram on a
// logarithmic time axis, with p50, p99 and max marked.
func WriteSVG(w io.Writer, r *Result) error {
	h := r.Hist
	if h == nil || h.Count() == 0 {
		return fmt.Errorf("no latencies to draw")
	}
	const (
		width, height = 720, 360
		left, right   = 60, 20
		top, bottom   = 40, 50
		bins          = 60
	)
	lo := math.Max(1, float64(h.Quantile(0).Microseconds()))
	hi := math.Max(lo*10, float64(h.Max().Microseconds())+1)
	llo, lhi := math.Log10(lo), math.Log10(hi)
	var counts [bins]uint64
	var peak uint64
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		v := math.Max(lo, float64(bucketValue(i)))
		b := int(float64(bins) * (math.Log10(v) - llo) / (lhi - llo))
		b = min(max(b, 0), bins-1)
		counts[b] += c
		peak = max(peak, counts[b])
	}
	x := func(us float64) float64 {
		return left + (width-left-right)*(math.Log10(math.Max(us, lo))-llo)/(lhi-llo)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&sb, `<text x="%d" y="20" font-size="14">%s over %s: %d conns, %s deliveries, p50 %.1f ms, p99 %.1f ms, max %.1f ms</text>`+"\n",
		left, r.Scenario, r.Transport, r.Conns, num(float64(h.Count())), r.P50, r.P99, r.Max)
	bw := float64(width-left-right) / bins
	plotH := float64(height - top - bottom)
	for i, c := range counts {
		if c == 0 {
			continue
		}
		bh := plotH * float64(c) / float64(peak)
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7ab5"/>`+"\n",
			left+float64(i)*bw, float64(height-bottom)-bh, bw-1, bh)
	}
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, height-bottom, width-right, height-bottom)
	for d := 1.0; d <= hi*10; d *= 10 { // ticks at powers of ten microseconds
		if d < lo/10 {
			continue
		}
		if d >= lo && d <= hi {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(d), height-bottom+16, time.Duration(d)*time.Microsecond)
		}
	}
	for _, m := range []struct {
		name string
		v    float64
		col  string
	}{{"p50", r.P50, "green"}, {"p99", r.P99, "orange"}, {"max", r.Max, "red"}} {
		px := x(m.v * 1000)
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="4 2"/><text x="%.1f" y="%d" fill="%s">%s</text>`+"\n",
			px, top, px, height-bottom, m.col, px+3, top+12, m.col, m.name)
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">latency, publisher send to subscriber read (log scale)</text>`+"\n", width/2, height-10)
	sb.WriteString("</svg>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteMarkdown prints results as a Markdown table, with the label of each
// (what target it measures) in the first column.
func WriteMarkdown(w io.Writer, labels []string, results []*Result) error {
	var sb strings.Builder
	sb.WriteString("| run | scenario | transport | conns | rate/s | delivered/s | p50 ms | p90 ms | p99 ms | max ms | refused | lost | extra | dropped | conn/s | server CPU % | tool CPU % | server µs/msg | tool µs/msg | server KiB/conn | frames/write | reconnect s |\n")
	sb.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for i, r := range results {
		label := ""
		if i < len(labels) {
			label = labels[i]
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %d | %d | %d | %d | %s | %s | %.0f | %s | %s | %s | %s | %s |\n",
			label, r.Scenario, transportName(r), r.Conns, rate(r), num(r.DeliveredSec),
			ms(r.P50, r), ms(r.P90, r), ms(r.P99, r), ms(r.Max, r), r.Refused, r.Lost, r.Extra, r.Dropped,
			num(r.ConnectSec), num(r.ServerCPU), r.ToolCPU, num(r.ServerCPUPerMsg), num(r.ToolCPUPerMsg),
			num(r.ServerRSSConn), num(r.FramesPerWrite), reconnect(r))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// ReadResults reads the JSON lines WriteJSON wrote, each optionally
// preceded on the same line by a label and a tab; other lines are skipped.
func ReadResults(r io.Reader) (labels []string, results []*Result, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		label, js, found := strings.Cut(line, "\t")
		if !found {
			label, js = "", line
		}
		if !strings.HasPrefix(strings.TrimSpace(js), "{") {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(js), &res); err != nil {
			return nil, nil, fmt.Errorf("read results: %w", err)
		}
		labels, results = append(labels, label), append(results, &res)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read results: %w", err)
	}
	return labels, results, nil
}
