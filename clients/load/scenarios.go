package load

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// settle is how long the tool waits after setting up, so that the frames of
// the set-up (welcomes, joins) are read before anything is measured.
const settle = time.Second

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// fanout: Conns subscribers in one room, one publisher at Rate for Duration.
// With churn, other connections keep opening, joining and closing meanwhile.
func (r *runner) fanout(ctx context.Context, res *Result, churn bool) error {
	cfg := r.cfg
	fmt.Fprintf(cfg.Progress, "%s: %d subscribers over %s\n", cfg.Scenario, cfg.Conns, r.d.name())
	if err := r.setUp(ctx, res, func(int) string { return cfg.Room }); err != nil {
		return err
	}
	return r.publishToAll(ctx, res, churn)
}

// publishToAll opens a publisher in Room and publishes to it at Rate for
// Duration, with churn if asked; it measures what the first Conns
// connections, all in Room, receive.
func (r *runner) publishToAll(ctx context.Context, res *Result, churn bool) error {
	cfg := r.cfg
	room, sendRoom := cfg.Room, cfg.Room
	if room == "-" {
		sendRoom = ""
	}
	pub, err := r.openOn(ctx, r.pubd, r.named("pub"), room, "jpub", nil)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	r.mu.Lock()
	pubIndex := len(r.clients)
	r.clients = append(r.clients, pub)
	r.mu.Unlock()
	sleep(ctx, settle)

	r.hist.Reset()
	srv, tool := startStats(r.serverPID), startStats(os.Getpid())
	profiled := r.startProfile(ctx, cfg.Duration)
	defer profiled()
	var ch *churner
	if churn {
		ch = r.startChurn(ctx, room)
	}
	fmt.Fprintf(cfg.Progress, "%s: publishing %g msg/s for %v\n", cfg.Scenario, cfg.Rate, cfg.Duration)
	payload := make([]byte, 0, PayloadSize)
	p, err := pace(ctx, cfg.Rate, cfg.Duration, func(k int64) error {
		return pub.c.send(sendRoom, stampPayload(payload, time.Now(), 0, uint64(k)))
	})
	if ch != nil {
		res.ChurnCycles, res.ChurnFailed = ch.stop()
	}
	// Every subscriber should get each message the server took.
	d := r.drain(ctx, 0, cfg.Conns, func(refusedBy []int64) func(int) int64 {
		want := p.sent - refusedBy[pubIndex]
		return func(int) int64 { return want }
	})
	r.finish(res, p, 1, d, srv, tool)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// named is the user for a special connection, "" for guests.
func (r *runner) named(user string) string {
	if len(r.cfg.JWTSecret) == 0 && r.cfg.Token == "" {
		return ""
	}
	return user
}

// churner opens and closes connections in the background, keeping at most
// churnLive of them open at once.
type churner struct {
	done           chan struct{}
	stopc          chan struct{}
	cycles, failed atomic.Int64
}

const churnLive = 16

func (r *runner) startChurn(ctx context.Context, room string) *churner {
	ch := &churner{done: make(chan struct{}), stopc: make(chan struct{})}
	every := time.Duration(float64(time.Second) / r.cfg.ChurnRate)
	limit := int64(r.cfg.ChurnRate*r.cfg.Duration.Seconds()*1.2) + 1 // bound by count too
	go func() {
		defer close(ch.done)
		var live []*client
		defer func() {
			for _, cl := range live {
				cl.c.close()
			}
		}()
		tick := time.NewTicker(max(every, time.Millisecond))
		defer tick.Stop()
		per := max(1, int(time.Millisecond/max(every, 1)))
		for i := int64(0); i < limit; {
			select {
			case <-ch.stopc:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for range per {
				i++
				cl, err := r.open(ctx, r.named("churn"+strconv.FormatInt(i, 10)), room, "c"+strconv.FormatInt(i, 10), nil)
				if err != nil {
					ch.failed.Add(1)
					continue
				}
				ch.cycles.Add(1)
				live = append(live, cl)
				if len(live) > churnLive {
					live[0].c.close()
					live = live[1:]
				}
			}
		}
	}()
	return ch
}

func (ch *churner) stop() (cycles, failed int64) {
	close(ch.stopc)
	<-ch.done
	return ch.cycles.Load(), ch.failed.Load()
}

// rooms: Conns connections over Rooms rooms, every member publishing to its
// room at Rate messages/s.
func (r *runner) rooms(ctx context.Context, res *Result) error {
	cfg := r.cfg
	res.Rooms = cfg.Rooms
	roomOf := func(i int) string { return "r" + strconv.Itoa(i%cfg.Rooms) }
	fmt.Fprintf(cfg.Progress, "rooms: %d connections in %d rooms over %s\n", cfg.Conns, cfg.Rooms, r.d.name())
	if err := r.setUp(ctx, res, roomOf); err != nil {
		return err
	}
	sleep(ctx, settle)

	r.hist.Reset()
	srv, tool := startStats(r.serverPID), startStats(os.Getpid())
	profiled := r.startProfile(ctx, cfg.Duration)
	defer profiled()
	fmt.Fprintf(cfg.Progress, "rooms: publishing %g msg/s per member for %v\n", cfg.Rate, cfg.Duration)
	payload := make([]byte, 0, PayloadSize)
	sentBy := make([]int64, cfg.Conns) // member i's messages carry publisher id i, numbered 0, 1, ...
	p, err := pace(ctx, cfg.Rate*float64(cfg.Conns), cfg.Duration, func(k int64) error {
		i := int(k % int64(cfg.Conns))
		if err := r.clients[i].c.send(roomOf(i), stampPayload(payload, time.Now(), uint32(i), uint64(sentBy[i]))); err != nil {
			return err
		}
		sentBy[i]++
		return nil
	})
	// Every member, the sender included, should get each message its
	// room's members sent that the server took.
	d := r.drain(ctx, 0, cfg.Conns, func(refusedBy []int64) func(int) int64 {
		want := make([]int64, cfg.Rooms)
		for j, n := range sentBy {
			want[j%cfg.Rooms] += n - refusedBy[j]
		}
		return func(i int) int64 { return want[i%cfg.Rooms] }
	})
	r.finish(res, p, cfg.Conns, d, srv, tool)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// setupCPU fills in how busy the server and the tool were over a set-up of
// n connections that has just ended, and what each connection cost each.
func setupCPU(res *Result, srv, tool procStats, n int) {
	res.SetupServerCPU, res.SetupToolCPU = srv.busy(), tool.busy()
	if n > 0 {
		perConn := func(p procStats) float64 { return float64(p.cpu().Microseconds()) / float64(n) }
		res.SetupServerCPUPerConn, res.SetupToolCPUPerConn = perConn(srv), perConn(tool)
	}
}

// idle: Conns connections, each joined to one of Rooms rooms, held for
// Duration; the connect rate and the server's RSS per connection.
func (r *runner) idle(ctx context.Context, res *Result) error {
	cfg := r.cfg
	res.Rooms = cfg.Rooms
	var rss0, tool0 int64
	if r.serverPID > 0 {
		var err error
		if rss0, err = rss(r.serverPID); err != nil {
			return err
		}
	}
	tool0, _ = rss(os.Getpid())
	fmt.Fprintf(cfg.Progress, "idle: %d connections in %d rooms over %s\n", cfg.Conns, cfg.Rooms, r.d.name())
	setupSrv, setupTool := startStats(r.serverPID), startStats(os.Getpid())
	err := r.setUp(ctx, res, func(i int) string { return "r" + strconv.Itoa(i%cfg.Rooms) })
	setupCPU(res, setupSrv, setupTool, r.connected())
	if err != nil {
		return err
	}
	sleep(ctx, settle)

	srv, tool := startStats(r.serverPID), startStats(os.Getpid())
	profiled := r.startProfile(ctx, cfg.Duration)
	defer profiled()
	fmt.Fprintf(cfg.Progress, "idle: holding for %v\n", cfg.Duration)
	start := time.Now()
	sleep(ctx, cfg.Duration)
	res.Seconds = time.Since(start).Seconds()
	res.ServerCPU, res.ToolCPU = srv.busy(), tool.busy()
	if r.serverPID > 0 {
		rss1, err := rss(r.serverPID)
		if err != nil {
			return err
		}
		res.ServerRSSMiB = float64(rss1) / (1 << 20)
		res.ServerRSSConn = float64(rss1-rss0) / 1024 / float64(cfg.Conns)
	}
	if tool1, err := rss(os.Getpid()); err == nil {
		res.ToolRSSConnKiB = float64(tool1-tool0) / 1024 / float64(cfg.Conns)
	}
	return nil
}
