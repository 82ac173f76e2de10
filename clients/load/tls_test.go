package load_test

import (
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
	"github.com/tertulia/tertulia/server/tlsconfig/tlstest"
)

// With TLS the own client speaks wss to a node that terminates TLS: the
// idle scenario's connections open (welcome, join), hold and close, and
// the node's memory is read.
func TestIdleOverTLS(t *testing.T) {
	r, _ := tlstest.NewCA(t).Reloader(t)
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited(), TLS: r})
	res := run(t, srv, load.Config{Scenario: "idle", Transport: "ws", TLS: true, Conns: 20, Rooms: 2, Duration: 200 * time.Millisecond})
	if res.Dropped != 0 || res.ConnectSec <= 0 || res.ServerRSSMiB <= 0 {
		t.Errorf("got %d dropped (%s), %v connections/s, server RSS %v MiB; want none dropped, both > 0",
			res.Dropped, res.FirstDrop, res.ConnectSec, res.ServerRSSMiB)
	}
}
