package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// writeConfig writes data to a tertulia.yaml in a temporary directory.
func writeConfig(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tertulia.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeRefusesAConfigWithAnUnknownKey(t *testing.T) {
	path := writeConfig(t, "jwt_secret: config-test-secret-0123456789\nnamespaces:\n  team:\n    privte: true\n")
	err := run(context.Background(), []string{"serve", "--config", path, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	want := path + `:4: namespace "team": unknown key "privte"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve: got %v, want an error containing %q", err, want)
	}
}

// A file sets what no flag or environment variable does: here the
// secret's fallback, guests and a private namespace. The environment's
// secret and the command line's addresses win over the file's.
func TestServeReadsTheConfigFileUnderFlagsAndEnvironment(t *testing.T) {
	bin := buildBinary(t)
	envSecret, fileSecret := "config-env-secret-0123456789", "config-file-secret-0123456789"
	path := writeConfig(t, `
jwt_secret: `+fileSecret+`
grpc_addr: "256.0.0.1:1"  # unusable: the command line's --grpc-addr must win
allow_anonymous: true
limits:
  conns_per_user: 1
namespaces:
  team: {private: true}
`)
	p := startServe(t, bin, []string{"TERTULIA_JWT_SECRET=" + envSecret}, "--config", path)
	a, err := auth.New(auth.Config{Secret: []byte(envSecret)})
	if err != nil {
		t.Fatal(err)
	}
	session := func(name, tok string) *client.Session {
		t.Helper()
		var opts []client.Option
		if tok != "" {
			opts = append(opts, client.WithToken(tok))
		}
		c, err := client.Dial(p.grpcAddr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodetest.Await(t, name, s, "welcome", func(f *chatv1.ServerFrame) bool { return f.GetSystem() != nil })
		return s
	}
	carolTok, _ := a.Issue("carol", false)
	aliceTok, _ := a.Issue("alice", false, "team:*")
	guest := session("guest", "") // allow_anonymous from the file
	carol := session("carol", carolTok)
	alice := session("alice", aliceTok)
	for name, s := range map[string]*client.Session{"guest": guest, "carol": carol} {
		if err := s.Join("team:eng"); err != nil {
			t.Fatal(err)
		}
		f := nodetest.Await(t, name, s, "error", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil })
		if f.GetError().Code != "forbidden" {
			t.Errorf("%s joining team:eng: error %v, want code forbidden", name, f.GetError())
		}
	}
	nodetest.Join(t, "alice", alice, "team:eng", "alice")

	// limits: sets the --limit-* flags: a second connection of alice's is over the file's one.
	c2, err := client.Dial(p.grpcAddr, client.WithToken(aliceTok))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2, err := c2.Connect(context.Background())
	if err == nil {
		defer s2.Close()
		select {
		case f, ok := <-s2.Events():
			if ok {
				t.Fatalf("alice's second session got %v, want it refused", f)
			}
		case <-time.After(nodetest.WaitTimeout):
			t.Fatal("alice's second session neither refused nor welcomed")
		}
		err = s2.Err()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("alice's second connection with limits.conns_per_user 1: %v, want ResourceExhausted", err)
	}

	fileAuth, _ := auth.New(auth.Config{Secret: []byte(fileSecret)})
	tok, _ := fileAuth.Issue("mallory", false)
	c, err := client.Dial(p.grpcAddr, client.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(context.Background()); err == nil {
		t.Error("a token signed with the file's secret was accepted; want the environment's secret to win")
	}
}

// The README's example file is one tertulia serve accepts: it gets as far
// as listening (on an address that cannot be), past every configuration
// check.
func TestReadmeConfigExampleIsAccepted(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```yaml example")
	}
	path := writeConfig(t, block)
	t.Setenv("TERTULIA_JWT_SECRET", "readme-config-secret-0123456789")
	err = run(context.Background(), []string{"serve", "--config", path, "--grpc-addr", "256.0.0.1:1", "--http-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen grpc") {
		t.Errorf("serve with the README's example: %v, want only the listen error", err)
	}
}
