package load_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// progressHook calls on the first progress line that holds word.
type progressHook struct {
	word []byte
	on   func()
	done bool
}

func (p *progressHook) Write(b []byte) (int, error) {
	if !p.done && bytes.Contains(b, p.word) {
		p.done = true
		p.on()
	}
	return len(b), nil
}

// Messages the server refuses with an unavailable error (its Redis is gone)
// are counted as refused: they are not expected, so not lost either. Redis
// is killed as publishing starts, when every subscriber has joined.
func TestRefusedMessagesAreNotLost(t *testing.T) {
	for _, tc := range []struct{ transport, client string }{{"ws", "own"}, {"ws", "coder"}, {"grpc", "own"}} {
		t.Run(tc.transport+"/"+tc.client, func(t *testing.T) {
			rs := redistest.Start(t)
			srv := nodetest.StartOnRedis(t, rs.URL())
			const conns = 5
			res := run(t, srv, load.Config{
				Scenario: "fanout", Transport: tc.transport, Client: tc.client, Conns: conns, Rate: 40, Duration: 500 * time.Millisecond,
				Progress: &progressHook{word: []byte("publishing"), on: func() { rs.Stop(t) }},
			})
			if res.Refused == 0 {
				t.Errorf("got 0 refused of %d published, want the messages sent after Redis went refused", res.Published)
			}
			if want := (res.Published - res.Refused) * conns; res.Expected != want {
				t.Errorf("got %d deliveries expected, want %d: the %d messages not refused, to %d subscribers", res.Expected, want, res.Published-res.Refused, conns)
			}
			if res.Lost != max(0, res.Expected-res.Delivered) {
				t.Errorf("got %d lost, want expected %d - delivered %d", res.Lost, res.Expected, res.Delivered)
			}
			// What the test is for: were refused messages still expected,
			// each would be lost at every subscriber.
			if res.Lost >= res.Refused*conns {
				t.Errorf("got %d lost for %d refused to %d subscribers: the refused ones are counted as lost", res.Lost, res.Refused, conns)
			}
		})
	}
}
