package node_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
	"github.com/tertulia/tertulia/server/tlsconfig"
	"github.com/tertulia/tertulia/server/tlsconfig/tlstest"
)

// grpcurl returns the path of the grpcurl binary that `make tools` installs.
func grpcurl(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "grpcurl")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("grpcurl")
	if err != nil {
		t.Fatal("grpcurl not found: run `make tools`")
	}
	return p
}

// TestTLSOnBothPorts serves a node over TLS and talks to it as its users
// would: grpcurl trusting the test CA, REST over https, a WebSocket over
// wss; then swaps the certificate on disk and sees the new one served on
// both ports without a restart.
func TestTLSOnBothPorts(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Install(t, 1, certFile, keyFile)
	r, err := tlsconfig.New(tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, CheckInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := nodetest.Start(t, node.Config{TLS: r})
	caFile := ca.WriteCA(t, dir)
	bin := grpcurl(t)

	tok := srv.Token(t, "alice", false) // reads and reflection need one outside dev mode
	grpcurlRun := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"-max-time", "10", "-H", "authorization: Bearer " + tok}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := grpcurlRun("-cacert", caFile, srv.GRPCAddr, "list"); err != nil || !strings.Contains(out, "chat.v1.ChatService") {
		t.Errorf("grpcurl -cacert list: %v\n%s\nwant chat.v1.ChatService", err, out)
	}
	if out, err := grpcurlRun("-cacert", caFile, srv.GRPCAddr, "chat.v1.ChatService/GetStats"); err != nil || !strings.Contains(out, "{") {
		t.Errorf("grpcurl -cacert GetStats: %v\n%s\nwant a JSON answer", err, out)
	}
	if out, err := grpcurlRun("-plaintext", srv.GRPCAddr, "list"); err == nil {
		t.Errorf("grpcurl -plaintext on the TLS port succeeded:\n%s\nwant refused", out)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	defer client.CloseIdleConnections()
	stats := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+srv.HTTPAddr+"/api/v1/websocket/stats", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("https stats: %v", err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("https stats: status %d, %v; want 200 JSON", resp.StatusCode, err)
		}
	}
	stats() // through the gateway, which reaches the gRPC port over TLS too

	d := ws.Dialer{Timeout: waitTimeout, TLSConfig: &tls.Config{RootCAs: ca.Pool()}}
	conn, br, _, err := d.Dial(context.Background(), "wss://"+srv.HTTPAddr+"/api/v1/ws?token="+srv.Token(t, "alice", false))
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	rw := struct {
		io.Reader
		io.Writer
	}{conn, conn}
	if br != nil { // the welcome came with the handshake's answer
		rw.Reader = io.MultiReader(br, conn)
	}
	var welcome struct{ Type string }
	data, err := wsutil.ReadServerText(rw)
	if err != nil || json.Unmarshal(data, &welcome) != nil || welcome.Type != "system" {
		t.Errorf("wss first frame %s (%v), want the system welcome", data, err)
	}
	conn.Close()

	ca.Install(t, 2, certFile, keyFile)
	for name, addr := range map[string]string{"grpc": srv.GRPCAddr, "http": srv.HTTPAddr} {
		if got := ca.Serial(t, addr); got != 2 {
			t.Errorf("%s port serves serial %d after the swap, want 2", name, got)
		}
	}
	if out, err := grpcurlRun("-cacert", caFile, srv.GRPCAddr, "list"); err != nil {
		t.Errorf("grpcurl after the swap: %v\n%s", err, out)
	}
	client.CloseIdleConnections()
	stats()
}
