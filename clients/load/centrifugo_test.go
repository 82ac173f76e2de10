package load_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
)

// cfSecret is the token secret of the tests' Centrifugo.
var cfSecret = []byte("centrifugo-test-secret-0123456789")

// centrifugoBin is the Centrifugo binary to measure: $CENTRIFUGO_BIN, or
// centrifugo in PATH. Without one the test is skipped: the CI does not
// download Centrifugo, which is a measuring instrument, not a dependency
// (clients/load/centrifugo.sh builds it).
func centrifugoBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CENTRIFUGO_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("centrifugo")
	if err != nil {
		t.Skip("no centrifugo binary: set CENTRIFUGO_BIN or put centrifugo v6 in PATH " +
			"(clients/load/centrifugo.sh builds it into ~/.cache/tertulia/centrifugo-v6.9.1/)")
	}
	return bin
}

// startCentrifugo starts bin with centrifugo.json on a free loopback port
// and cfSecret, waits until it is healthy and returns its address; the
// process is killed when the test ends.
func startCentrifugo(t *testing.T, bin string) (addr string, pid int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logFile, err := os.Create(filepath.Join(t.TempDir(), "centrifugo.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config", "centrifugo.json")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CENTRIFUGO_") { // ours, not Centrifugo's settings
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CENTRIFUGO_HTTP_SERVER_PORT="+strconv.Itoa(port),
		"CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY="+string(cfSecret))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := hc.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("centrifugo not healthy on %s within 10s (%v); its log:\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCentrifugo runs the tool's centrifugo protocol against a real
// Centrifugo v6: the one test of the package that is skipped without its
// binary.
func TestCentrifugo(t *testing.T) {
	addr, pid := startCentrifugo(t, centrifugoBin(t))

	t.Run("fanout delivers everything", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := load.Run(ctx, load.Config{
			Protocol: "centrifugo", Scenario: "fanout", Transport: "ws", HTTPAddr: addr, JWTSecret: cfSecret,
			Conns: 50, Rate: 100, Duration: time.Second, Drain: drain, ServerPID: pid,
		})
		if err != nil {
			t.Fatalf("fanout against centrifugo: %v", err)
		}
		if res.Connected != 50 || res.Client != "centrifugo" {
			t.Errorf("got %d connected over client %q, want 50 over centrifugo", res.Connected, res.Client)
		}
		if res.Delivered == 0 || res.Lost != 0 || res.Extra != 0 || res.Dropped != 0 {
			t.Errorf("got %d delivered, %d lost, %d extra, %d dropped (%s); want some delivered, none lost, extra or dropped",
				res.Delivered, res.Lost, res.Extra, res.Dropped, res.FirstDrop)
		}
	})

	// A token Centrifugo does not accept fails the set-up with its
	// refusal, not a hang until the set-up's bound.
	t.Run("refused token fails the set-up", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := load.Run(ctx, load.Config{
			Protocol: "centrifugo", Scenario: "idle", Transport: "ws", HTTPAddr: addr,
			JWTSecret: []byte("not-the-secret-0123456789abcdef"), Conns: 2, Duration: 100 * time.Millisecond,
		})
		if err == nil || !strings.Contains(err.Error(), "token") {
			t.Fatalf("got error %v, want the set-up failed on the token", err)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("the refused set-up took %v, want it to fail at once", took)
		}
	})
}

func TestCentrifugoBadConfigIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  load.Config
		want string
	}{
		{"unknown protocol", load.Config{Scenario: "fanout", Transport: "ws", Protocol: "mqtt"}, `unknown protocol "mqtt"`},
		{"over grpc", load.Config{Scenario: "fanout", Transport: "grpc", Protocol: "centrifugo", Token: "t"}, "want transport ws"},
		{"lobby", load.Config{Scenario: "fanout", Transport: "ws", Protocol: "centrifugo", Token: "t", Room: "-"}, "no lobby"},
		{"no token", load.Config{Scenario: "fanout", Transport: "ws", Protocol: "centrifugo"}, "needs a token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load.Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
