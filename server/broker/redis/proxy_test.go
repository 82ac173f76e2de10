package redis

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutProxy is a TCP proxy to Redis that cuts a connection off once it
// sends trigger (a command's name, in any case): Redis's replies on it are
// no longer passed back (lost counts their bytes), and, if hold is set,
// what it sends from then on is held back too, until run: Redis runs those
// calls late, as a Redis cut off from the caller for a while. Without hold,
// the calls are run at once, their replies lost on the way. (go-redis
// tries a call that timed out again, on another connection: cut off too.)
// Other connections pass.
type cutProxy struct {
	ln      net.Listener
	addr    string
	trigger []byte
	hold    bool
	wg      sync.WaitGroup
	lost    atomic.Int64
	mu      sync.Mutex // protects open and held
	open    []net.Conn
	held    []*heldConn
}

// heldConn is a connection cut off: what its client sent, held back.
type heldConn struct {
	redis   net.Conn
	sent    bytes.Buffer
	flushed bool
	answer  chan struct{} // closed when Redis answers on it
	once    sync.Once
}

func startCutProxy(t *testing.T, redisAddr, trigger string, hold bool) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, addr: ln.Addr().String(), trigger: []byte(trigger), hold: hold}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", redisAddr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			h := &heldConn{redis: s, answer: make(chan struct{})}
			var cut atomic.Bool
			go func() { defer p.wg.Done(); p.toRedis(c, s, h, &cut) }()
			go func() { defer p.wg.Done(); p.back(c, s, h, &cut) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// toRedis passes what the client c sends to Redis (s) until it is cut off,
// and then, with hold, keeps it in h, also once the client gave up.
func (p *cutProxy) toRedis(c, s net.Conn, h *heldConn, cut *atomic.Bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if !cut.Load() && bytes.Contains(bytes.ToUpper(buf[:n]), p.trigger) {
			cut.Store(true)
			if p.hold {
				p.mu.Lock()
				p.held = append(p.held, h)
				p.mu.Unlock()
			}
		}
		if cut.Load() && p.hold {
			p.mu.Lock()
			h.sent.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
			continue
		}
		if n > 0 {
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			s.Close()
			return
		}
	}
}

// back passes Redis's replies to the client until it is cut off.
func (p *cutProxy) back(c, s net.Conn, h *heldConn, cut *atomic.Bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if cut.Load() {
			p.lost.Add(int64(n))
			if n > 0 {
				h.once.Do(func() { close(h.answer) })
			}
		} else if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

// run sends Redis what the held connections sent, and waits until it has
// answered on each: it has run their calls. It returns how many there
// were.
func (p *cutProxy) run(t *testing.T) int {
	t.Helper()
	p.mu.Lock()
	held := p.held
	for _, h := range held {
		if !h.flushed {
			h.flushed = true
			if _, err := h.redis.Write(h.sent.Bytes()); err != nil {
				t.Error(err)
			}
		}
	}
	p.mu.Unlock()
	for _, h := range held {
		select {
		case <-h.answer:
		case <-time.After(waitTimeout):
			t.Fatal("redis did not answer the calls held back")
		}
	}
	return len(held)
}
