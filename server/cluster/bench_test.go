package cluster_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkCrossNodeDelivery measures delivery from a publisher on node A to
// subscribers on node B through Redis, all over real gRPC: messages per
// second, deliveries per second, and the latency from Send on A to receipt
// on B (p50, p99). Unpaced runs find the throughput (their latency is mostly
// queueing); paced runs show latency below saturation.
//
//	go test -run '^$' -bench CrossNode -benchtime 20000x ./server/cluster/
func BenchmarkCrossNodeDelivery(b *testing.B) {
	for _, bc := range []struct {
		subs int
		rate int // messages per second; 0: as fast as the publisher can
	}{{1, 0}, {10, 0}, {100, 0}, {10, 2000}} {
		pace := "unpaced"
		if bc.rate > 0 {
			pace = fmt.Sprintf("rate=%d", bc.rate)
		}
		b.Run(fmt.Sprintf("subscribers=%d/%s", bc.subs, pace), func(b *testing.B) { benchCrossNode(b, bc.subs, bc.rate) })
	}
}

func benchCrossNode(b *testing.B, subs, rate int) {
	cl := startCluster(b, 2)
	pub := connect(b, cl.nodes[0], "publisher", false)
	pub.join("bench")
	stop := make(chan struct{})
	var drained sync.WaitGroup
	drained.Go(func() { // the publisher is a member too: it must read its echo
		for {
			select {
			case _, ok := <-pub.s.Events():
				if !ok {
					return
				}
			case <-stop:
				return
			}
		}
	})
	defer func() { close(stop); drained.Wait() }()

	receivers := make([]*user, subs)
	for i := range receivers {
		receivers[i] = connect(b, cl.nodes[1], fmt.Sprintf("sub%d", i), false)
		receivers[i].join("bench")
	}
	lat := make([][]time.Duration, subs)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i, u := range receivers {
		lat[i] = make([]time.Duration, 0, b.N)
		wg.Go(func() {
			<-ready
			timeout := time.After(time.Minute)
			for len(lat[i]) < b.N {
				select {
				case f, ok := <-u.s.Events():
					if !ok {
						b.Errorf("%s: session ended: %v", u.name, u.s.Err())
						return
					}
					if m := f.GetMessage(); m.GetRoom() == "bench" {
						sent, _ := strconv.ParseInt(m.Message, 10, 64)
						lat[i] = append(lat[i], time.Since(time.Unix(0, sent)))
					}
				case <-timeout:
					b.Errorf("%s: got %d of %d messages within a minute", u.name, len(lat[i]), b.N)
					return
				}
			}
		})
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	b.ResetTimer()
	close(ready)
	start := time.Now()
	for i := range b.N {
		if interval > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
		if err := pub.s.Send("bench", strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
			b.Fatalf("send: %v", err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
