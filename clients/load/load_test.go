package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }

// drain bounds the wait for the last deliveries in tests: far above what
// they need, so that a machine busy with other tests does not pass for a
// loss; a run that receives everything stops waiting at once.
const drain = 20 * time.Second

// run runs cfg against srv and fails the test on an error.
func run(t *testing.T, srv *nodetest.Server, cfg load.Config) *load.Result {
	t.Helper()
	cfg.HTTPAddr, cfg.GRPCAddr = srv.HTTPAddr, srv.GRPCAddr
	cfg.Drain = drain
	cfg.JWTSecret = nodetest.Secret
	cfg.ServerPID = os.Getpid() // the node runs in this process
	cfg.Warnings = testLog{t}   // a machine busy with other tests may slow the publisher
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := load.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run %s over %s: %v", cfg.Scenario, cfg.Transport, err)
	}
	return res
}

// testLog writes to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestScenariosDeliverEverything(t *testing.T) {
	for _, transport := range load.Transports {
		for _, tc := range []struct {
			name string
			cfg  load.Config
		}{
			{"fanout", load.Config{Scenario: "fanout", Conns: 20, Rate: 200, Duration: 500 * time.Millisecond}},
			{"fanout-lobby", load.Config{Scenario: "fanout", Conns: 20, Users: 2, Room: "-", Rate: 200, Duration: 500 * time.Millisecond}},
			// Over WebSocket, offering tertulia.v1 (gRPC ignores it).
			{"fanout-subprotocol", load.Config{Scenario: "fanout", Conns: 20, OfferProtocol: true, Rate: 200, Duration: 500 * time.Millisecond}},
			{"rooms", load.Config{Scenario: "rooms", Conns: 20, Rooms: 4, Rate: 10, Duration: 500 * time.Millisecond}},
			{"churn", load.Config{Scenario: "churn", Conns: 10, Rate: 100, ChurnRate: 50, Duration: 500 * time.Millisecond}},
		} {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
				cfg := tc.cfg
				cfg.Transport = transport
				res := run(t, srv, cfg)
				checkAllDelivered(t, res)
				if tc.name == "churn" && res.ChurnCycles == 0 {
					t.Errorf("got 0 churn cycles, want some")
				}
			})
		}
	}
}

func TestIdleMeasuresMemoryAndConnectRate(t *testing.T) {
	for _, transport := range load.Transports {
		t.Run(transport, func(t *testing.T) {
			srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
			res := run(t, srv, load.Config{Scenario: "idle", Transport: transport, Conns: 50, Rooms: 5, Duration: 200 * time.Millisecond})
			if res.ConnectSec <= 0 {
				t.Errorf("got connect rate %v/s, want > 0", res.ConnectSec)
			}
			if res.ServerRSSMiB <= 0 {
				t.Errorf("got server RSS %v MiB, want > 0", res.ServerRSSMiB)
			}
			if res.Dropped != 0 {
				t.Errorf("got %d dropped connections (%s), want 0", res.Dropped, res.FirstDrop)
			}
			stats, err := srv.Node.Hub().Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// Run closed every connection before returning; the server may
			// take a moment to notice.
			deadline := time.Now().Add(5 * time.Second)
			for stats.TotalConnections != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				stats, _ = srv.Node.Hub().Stats(context.Background())
			}
			if stats.TotalConnections != 0 {
				t.Errorf("got %d connections left on the server, want 0", stats.TotalConnections)
			}
		})
	}
}

// noRestart is a Config.Restart that must not be called.
func noRestart(context.Context) (int, error) { panic("restart called") }

func TestBadConfigIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  load.Config
		want string
	}{
		{"unknown scenario", load.Config{Scenario: "stampede", Transport: "ws"}, `unknown scenario "stampede"`},
		{"unknown transport", load.Config{Scenario: "fanout", Transport: "carrier-pigeon"}, `unknown transport "carrier-pigeon"`},
		{"unknown client", load.Config{Scenario: "fanout", Transport: "ws", Client: "netcat"}, `unknown client "netcat"`},
		{"coder over grpc", load.Config{Scenario: "fanout", Transport: "grpc", Client: "coder"}, "want transport ws"},
		{"remote target", load.Config{Scenario: "fanout", Transport: "ws", HTTPAddr: "192.0.2.1:8000"}, "not a loopback address"},
		{"remote grpc target", load.Config{Scenario: "fanout", Transport: "grpc", GRPCAddr: "example.com:9090"}, "not a loopback address"},
		{"too many conns", load.Config{Scenario: "idle", Transport: "ws", Conns: 1_000_000}, "over the limit"},
		{"more rooms than conns", load.Config{Scenario: "rooms", Transport: "ws", Conns: 10, Rooms: 20}, "at most one room per connection"},
		{"endless", load.Config{Scenario: "fanout", Transport: "ws", Duration: 48 * time.Hour}, "over the limit of 1h"},
		{"restart over grpc", load.Config{Scenario: "reconnect", Transport: "grpc", Restart: noRestart}, "a restart is for the reconnect scenario over ws"},
		{"restart in a fanout", load.Config{Scenario: "fanout", Transport: "ws", Restart: noRestart}, "a restart is for the reconnect scenario over ws"},
		{"tls over grpc", load.Config{Scenario: "idle", Transport: "grpc", TLS: true}, "tls is spoken by the own WebSocket client"},
		{"tls from coder", load.Config{Scenario: "idle", Transport: "ws", Client: "coder", TLS: true}, "tls is spoken by the own WebSocket client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := load.Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
			if res != nil {
				t.Errorf("got a result %+v, want none", res)
			}
		})
	}
}

func TestReportFormats(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	res := run(t, srv, load.Config{Scenario: "fanout", Transport: "ws", Conns: 5, Rate: 100, Duration: 300 * time.Millisecond})

	var js bytes.Buffer
	if err := load.WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(js.String(), "\n"); n != 1 {
		t.Errorf("got %d lines of JSON, want 1", n)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON line does not parse: %v", err)
	}
	if back["scenario"] != "fanout" || back["delivered"].(float64) != float64(res.Delivered) {
		t.Errorf("got JSON %s, want scenario fanout and delivered %d", js.String(), res.Delivered)
	}
	// run.sh reads these by name.
	for _, key := range []string{"lost", "extra", "refused", "dropped", "p99_ms", "rate_per_s", "target_rate_per_s", "delivered_per_s", "connected", "conns"} {
		if _, ok := back[key]; !ok {
			t.Errorf("got JSON %s, want a %q field", js.String(), key)
		}
	}

	labels, results, err := load.ReadResults(strings.NewReader("noise\nfanout-5\t" + js.String()))
	if err != nil || len(results) != 1 || labels[0] != "fanout-5" || results[0].Delivered != res.Delivered {
		t.Fatalf("got %v %v %v, want the one result back with its label", labels, results, err)
	}
	var md, table, svg bytes.Buffer
	if err := load.WriteMarkdown(&md, labels, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| lost | extra |") {
		t.Errorf("got Markdown %q, want an extra column beside lost", md.String())
	}
	if !strings.Contains(md.String(), "| fanout-5 | fanout | ws | 5 |") {
		t.Errorf("got Markdown %q, want a row for fanout-5", md.String())
	}
	if err := load.WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(table.String(), "\n"); n != 2 {
		t.Errorf("got %d table lines, want a header and a row:\n%s", n, table.String())
	}
	if err := load.WriteSVG(&svg, res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svg.String(), "<svg") || !strings.Contains(svg.String(), "p99") {
		t.Errorf("got SVG %.80q..., want an <svg> with the p99 marked", svg.String())
	}
}
