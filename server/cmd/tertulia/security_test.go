package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tertulia/tertulia/server/tlsconfig/tlstest"
)

// TestServeOverTLSWithPublicKeys runs the binary as an operator would with
// an identity provider's key and a certificate, from flags and the
// environment: no HS256 secret, no dev mode. grpcurl, trusting only the
// test CA, lists the services and broadcasts as an admin whose Ed25519
// token the server verifies with the PEM key.
func TestServeOverTLSWithPublicKeys(t *testing.T) {
	path := grpcurlPath(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Install(t, 7, certFile, keyFile)
	caFile := ca.WriteCA(t, dir)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyPEM := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	admin, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "ops", "roles": []string{"admin"},
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}

	p := startServe(t, buildBinary(t), []string{"TERTULIA_TLS_CERT=" + certFile, "TERTULIA_JWT_PUBLIC_KEY=" + keyPEM},
		"--tls-key", keyFile)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("grpcurl", append([]string{"-max-time", "10", "-cacert", caFile}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("grpcurl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("-H", "authorization: Bearer "+admin, p.grpcAddr, "list"); !strings.Contains(out, "chat.v1.ChatService") {
		t.Errorf("grpcurl list printed\n%s\nwant chat.v1.ChatService", out)
	}
	if out := run("-H", "authorization: Bearer "+admin, "-d", `{"message":"over tls","room":"general"}`,
		p.grpcAddr, "chat.v1.ChatService/Broadcast"); !strings.Contains(out, "Message sent") {
		t.Errorf("grpcurl Broadcast printed\n%s\nwant Message sent", out)
	}
	if got := ca.Serial(t, p.httpAddr); got != 7 {
		t.Errorf("HTTP port serves serial %d, want 7", got)
	}
}

func TestPublicKeyFlagRepeatsAndSplits(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"repeated", "", []string{"--jwt-public-key", "a.pem", "--jwt-public-key", "b.pem,c.pem"}, []string{"a.pem", "b.pem", "c.pem"}},
		{"environment", "a.pem, b.pem", nil, []string{"a.pem", "b.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TERTULIA_JWT_PUBLIC_KEY", tc.env)
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			sec := addSecurityFlags(fs)
			if err := parse(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sec.publicKeys, tc.want) {
				t.Errorf("public keys = %q, want %q", sec.publicKeys, tc.want)
			}
		})
	}
}
