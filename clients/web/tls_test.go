package web_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	web "github.com/tertulia/tertulia/clients/web"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
	"github.com/tertulia/tertulia/server/tlsconfig/tlstest"
)

// TestPagesOverTLSInChromium serves the pages over https and runs
// tls_test.mjs: Chromium logs in, connects over wss and chats.
func TestPagesOverTLSInChromium(t *testing.T) {
	nodeBin := need(t)
	r, certFile := tlstest.NewCA(t).Reloader(t)
	srv := nodetest.Start(t, node.Config{Dev: true, Static: web.FS(), TLS: r, ShutdownTimeout: 3 * time.Second})
	_, port, _ := strings.Cut(srv.HTTPAddr, ":")

	runScript(t, nodeBin, "tls_test.mjs", []string{
		"BASE_URL=https://localhost:" + port,
		"SPKI=" + spki(t, certFile),
		"PROFILE=" + t.TempDir(),
		"CHROMIUM=" + chromiumPath,
	}, func(string) (string, bool) { return "", false })
}

// spki is the base64 SHA-256 of the public key of the certificate in
// certFile, as Chromium's --ignore-certificate-errors-spki-list takes it.
func spki(t *testing.T, certFile string) string {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no pem certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
