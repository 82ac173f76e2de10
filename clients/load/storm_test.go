package load_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// checkAllDelivered fails the test unless res published something and
// every subscriber received every message once, with no connection
// dropped.
func checkAllDelivered(t *testing.T, res *load.Result) {
	t.Helper()
	if res.Published == 0 {
		t.Fatalf("got 0 messages published, want some")
	}
	if res.Delivered != res.Expected || res.Lost != 0 || res.Extra != 0 {
		t.Errorf("got %d of %d deliveries (%d lost, %d extra), want all, each once", res.Delivered, res.Expected, res.Lost, res.Extra)
	}
	if res.Rate <= 0 || res.Rate > res.TargetRate*1.01 || res.DeliveredSec <= 0 {
		t.Errorf("got rate %v/s of target %v/s, delivered %v/s; want the rate achieved, > 0 and not above the target, and deliveries", res.Rate, res.TargetRate, res.DeliveredSec)
	}
	if res.Dropped != 0 {
		t.Errorf("got %d dropped connections (%s), want 0", res.Dropped, res.FirstDrop)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("got p50 %v p99 %v max %v ms, want 0 < p50 <= p99 <= max", res.P50, res.P99, res.Max)
	}
}

// The coder/websocket client, read as a lean production client would,
// receives every message of a fan-out to distinct users in a room, and the
// tool reports what each delivery cost it.
func TestCoderClientDeliversEverything(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	res := run(t, srv, load.Config{Scenario: "fanout", Transport: "ws", Client: "coder", Conns: 20, Rate: 200, Duration: 500 * time.Millisecond})
	checkAllDelivered(t, res)
	if res.Client != "coder" || res.Connected != 20 {
		t.Errorf("got client %q with %d connected, want coder with 20", res.Client, res.Connected)
	}
	if res.ToolCPUPerMsg <= 0 {
		t.Errorf("got tool CPU %v µs per message, want > 0", res.ToolCPUPerMsg)
	}
}

// After every connection of a room closes at once and all reconnect at once,
// every user is back in the room: each receives every message published
// after the storm.
func TestReconnectStormRejoinsEveryone(t *testing.T) {
	const conns = 30
	for _, tc := range []struct{ transport, client string }{{"ws", "own"}, {"ws", "coder"}, {"grpc", ""}} {
		t.Run(tc.transport+"/"+tc.client, func(t *testing.T) {
			srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
			res := run(t, srv, load.Config{Scenario: "reconnect", Transport: tc.transport, Client: tc.client,
				Conns: conns, Rate: 100, Duration: 300 * time.Millisecond})
			if res.ReconnectSec <= 0 || res.StormCloseSec <= 0 {
				t.Errorf("got storm close %vs, reconnect %vs, want both measured", res.StormCloseSec, res.ReconnectSec)
			}
			if res.ReconnectFailed != 0 || res.Connected != conns {
				t.Errorf("got %d failed reconnects and %d connected, want 0 and %d", res.ReconnectFailed, res.Connected, conns)
			}
			checkAllDelivered(t, res)
		})
	}
}

// A restart through Config.Restart: the node shuts down under its
// connections (gracefully, in this process: 1012) and starts again on the
// same addresses, every client reconnects when it sees its connection end,
// and every user is back in the room. The kill -9 of a real process is
// server/cmd/tertulia's TestBenchRestartsTheServerForTheStorm.
func TestRestartStormRejoinsEveryone(t *testing.T) {
	const conns = 30
	cfg := node.Config{Limits: nodetest.Unlimited()}
	srv := nodetest.Start(t, cfg)
	restarts := 0
	res := run(t, srv, load.Config{Scenario: "reconnect", Transport: "ws", Conns: conns, Rate: 100, Duration: 300 * time.Millisecond,
		Restart: func(context.Context) (int, error) {
			restarts++
			srv.Stop(t)
			nodetest.StartOn(t, cfg, srv.GRPCAddr, srv.HTTPAddr)
			return os.Getpid(), nil
		}})
	if restarts != 1 || res.RestartSec <= 0 || res.ReconnectSec < res.RestartSec {
		t.Errorf("got %d restarts, back in %vs, all re-joined in %vs; want 1, then all re-joined after", restarts, res.RestartSec, res.ReconnectSec)
	}
	if res.ReconnectFailed != 0 || res.Connected != conns {
		t.Errorf("got %d failed reconnects and %d connected, want 0 and %d", res.ReconnectFailed, res.Connected, conns)
	}
	checkAllDelivered(t, res)
}

// A restart that fails ends the storm at once with its error, rather than
// after the storm's bound with every client still waiting for its
// connection to end.
func TestFailedRestartEndsTheStormAtOnce(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	const bound = time.Minute
	start := time.Now()
	_, err := load.Run(context.Background(), load.Config{Scenario: "reconnect", Transport: "ws", Conns: 5, Rate: 100,
		Duration: 300 * time.Millisecond, HTTPAddr: srv.HTTPAddr, GRPCAddr: srv.GRPCAddr, JWTSecret: nodetest.Secret,
		SetupTimeout: bound, Warnings: testLog{t},
		Restart: func(context.Context) (int, error) { return 0, errors.New("no such server") }})
	if err == nil || !strings.Contains(err.Error(), "no such server") {
		t.Errorf("got error %v, want the restart's", err)
	}
	if took := time.Since(start); took > bound/2 {
		t.Errorf("the run took %v, want it to end on the restart's failure, well within the storm's bound %v", took, bound)
	}
}
