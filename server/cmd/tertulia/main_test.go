package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/node/nodetest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/server/auth"
)

func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }

// buildBinary builds the tertulia command once per test into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tertulia")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// serveProcess is a running `tertulia serve`.
type serveProcess struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	exited   chan error
}

var welcomeAddr = regexp.MustCompile(`grpcurl (?:-plaintext )?(\S+) list|browser: https?://(\S+)/`)

func startServe(t *testing.T, bin string, env []string, args ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, exited: make(chan error, 1)}
	sc := bufio.NewScanner(out)
	for sc.Scan() && (p.grpcAddr == "" || p.httpAddr == "") {
		if m := welcomeAddr.FindStringSubmatch(sc.Text()); m != nil {
			if m[1] != "" {
				p.grpcAddr = m[1]
			} else {
				p.httpAddr = m[2]
			}
		}
	}
	go io.Copy(io.Discard, out)
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	if p.grpcAddr == "" || p.httpAddr == "" {
		t.Fatalf("server did not print its addresses")
	}
	return p
}

func TestSIGTERMShutsDownWithinBoundAndTellsClients(t *testing.T) {
	bin := buildBinary(t)
	secret := "shutdown-test-secret-0123456789"
	p := startServe(t, bin, []string{"TERTULIA_JWT_SECRET=" + secret}, "--shutdown-spread", "1s", "--shutdown-timeout", "3s")
	sessions := openSessions(t, p.grpcAddr, secret, "alice", "bob")

	start := time.Now()
	p.terminate(t, 3*time.Second+2*time.Second)
	t.Logf("server exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	for i, s := range sessions {
		for range s.Events() {
		}
		if status.Code(s.Err()) != codes.Unavailable || !strings.Contains(s.Err().Error(), "service restart") {
			t.Errorf("client %d: session ended with %v, want Unavailable: service restart", i, s.Err())
		}
	}
}

func TestServeRefusesToStartWithoutSecret(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--jwt-secret") {
		t.Errorf("serve without secret: got %v, want an error naming --jwt-secret", err)
	}
}

func TestTokenCommandMintsAVerifiableToken(t *testing.T) {
	t.Setenv("TERTULIA_JWT_SECRET", "token-command-secret-0123456789")
	var out strings.Builder
	if err := run(context.Background(), []string{"token", "--user", "alice", "--admin"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	a, _ := auth.New(auth.Config{Secret: []byte("token-command-secret-0123456789")})
	who, err := a.Verify(strings.TrimSpace(out.String()))
	if err != nil || who.UserID != "alice" || !who.Admin {
		t.Errorf("token verifies as %+v, %v; want admin alice", who, err)
	}
}
