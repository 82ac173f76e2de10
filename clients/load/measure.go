package load

import (
	"context"
	"fmt"
	"time"
)

// publishing is what pace did: sent messages from start, over took, at
// target messages/s asked for in all.
type publishing struct {
	sent   int64
	start  time.Time
	took   time.Duration
	target float64
}

// rate is the rate achieved, in messages/s in all: the messages sent over
// the publishing time plus one interval at the target rate, since pace
// sends message k at k intervals from the start. A publisher on time
// reports the target; one that fell behind, or was cut short, less.
func (p publishing) rate() float64 {
	if p.sent == 0 {
		return 0
	}
	return float64(p.sent) / (p.took.Seconds() + 1/p.target)
}

// pace calls send for message k = 0, 1, ... at rate per second, spread
// evenly, until total messages have been sent or d has passed (a little
// slack for a late start) or ctx ends. It returns what it sent and the
// first error of send, after which it stops.
func pace(ctx context.Context, rate float64, d time.Duration, send func(k int64) error) (publishing, error) {
	total := int64(rate * d.Seconds())
	p := publishing{start: time.Now(), target: rate}
	hard := p.start.Add(d + d/10 + time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for p.sent < total {
		due := min(total, int64(time.Since(p.start).Seconds()*rate)+1)
		for ; p.sent < due; p.sent++ {
			if err := send(p.sent); err != nil {
				p.took = time.Since(p.start)
				return p, err
			}
		}
		if time.Now().After(hard) {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			p.took = time.Since(p.start)
			return p, nil
		}
	}
	p.took = time.Since(p.start)
	return p, nil
}

// deliveries is what the subscribers of a measured phase received, counted
// subscriber by subscriber: each one's losses are its own, so a copy one
// subscriber got twice cannot make up for a message another never got.
type deliveries struct {
	expected int64     // distinct messages the subscribers should have received, summed
	got      int64     // distinct messages they received, summed
	lost     int64     // per subscriber, expected minus got (not below 0), summed
	extra    int64     // copies of messages already received, summed
	refused  int64     // messages the server refused as unavailable
	end      time.Time // the end of the window the deliveries were counted in
}

// expectFunc says, given the messages each connection i of r.clients had
// refused (refusedBy[i]), how many distinct messages subscriber i should
// receive. The server delivers a refused message to nobody.
type expectFunc func(refusedBy []int64) (want func(i int) int64)

// drain waits, at most Drain, until each of clients[from:to] has received
// every message it should, and counts what they received. Deliveries are
// counted from the first publish to the last delivery, whether or not all
// came (what did not is counted as lost): that window is deliveries.end.
// Before, a single message missing stretched the window to the end of the
// wait, and a long --drain divided the rate by it.
func (r *runner) drain(ctx context.Context, from, to int, expect expectFunc) deliveries {
	deadline := time.Now().Add(r.cfg.Drain)
	var refusedBy []int64
	for {
		d := r.count(from, to, expect, &refusedBy)
		if d.lost == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			if d.end.IsZero() { // nothing delivered at all
				d.end = time.Now()
			}
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count counts what clients[from:to] received so far; end is the time of
// the last delivery. refusedBy is a buffer it reuses.
func (r *runner) count(from, to int, expect expectFunc, refusedBy *[]int64) deliveries {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d deliveries
	if cap(*refusedBy) < len(r.clients) {
		*refusedBy = make([]int64, len(r.clients))
	}
	refused := (*refusedBy)[:len(r.clients)]
	clear(refused)
	for i, cl := range r.clients {
		if cl != nil {
			refused[i] = cl.m.refused.Load()
			d.refused += refused[i]
		}
	}
	want := expect(refused)
	var last int64
	for i := from; i < to; i++ {
		w := want(i)
		d.expected += w
		cl := r.clients[i]
		if cl == nil {
			d.lost += w
			continue
		}
		got := cl.m.seen.got.Load()
		d.got += got
		d.lost += max(0, w-got)
		d.extra += cl.m.seen.extra.Load()
		last = max(last, cl.m.seen.last.Load())
	}
	if last > 0 {
		d.end = time.Unix(0, last)
	}
	return d
}

// finish fills in the rate, delivery, latency and load figures of res from
// one measured phase: p, published at TargetRate (per member: perMember is
// Conns for rooms, else 1), and d, what the subscribers received.
func (r *runner) finish(res *Result, p publishing, perMember int, d deliveries, srv, tool procStats) {
	res.TargetRate, res.Published, res.Seconds = r.cfg.Rate, p.sent, p.took.Seconds()
	res.Rate = p.rate() / float64(perMember)
	if res.Rate < 0.95*res.TargetRate {
		unit := "msg/s"
		if perMember > 1 {
			unit = "msg/s per member"
		}
		fmt.Fprintf(r.cfg.Warnings, "warning: %s published %s %s, %.0f%% of the %s asked: the figures are those of a lighter load\n",
			res.Scenario, num(res.Rate), unit, 100*res.Rate/res.TargetRate, num(res.TargetRate))
	}
	res.Expected, res.Delivered, res.Lost, res.Extra, res.Refused = d.expected, d.got, d.lost, d.extra, d.refused
	if window := d.end.Sub(p.start); window > 0 {
		res.DeliveredSec = float64(d.got) / window.Seconds()
	}
	res.ServerCPU, res.ToolCPU = srv.busy(), tool.busy()
	// Every copy read cost both sides, duplicates included.
	res.ServerWrites = srv.writeCalls()
	if read := d.got + d.extra; read > 0 {
		perMsg := func(p procStats) float64 { return float64(p.cpu().Microseconds()) / float64(read) }
		res.ServerCPUPerMsg, res.ToolCPUPerMsg = perMsg(srv), perMsg(tool)
		if res.ServerWrites > 0 {
			res.FramesPerWrite = float64(read) / float64(res.ServerWrites)
		}
	}
	ms := func(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 }
	res.P50, res.P90, res.P99 = ms(r.hist.Quantile(.5)), ms(r.hist.Quantile(.9)), ms(r.hist.Quantile(.99))
	res.Max = ms(r.hist.Max())
}
