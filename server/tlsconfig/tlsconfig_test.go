package tlsconfig_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/tlsconfig"
	"github.com/tertulia/tertulia/server/tlsconfig/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve accepts TLS connections with cfg on a loopback port until the
// test ends, completing each handshake.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func TestCertificateSwappedOnDiskIsServed(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Install(t, 100, certFile, keyFile)
	r, err := tlsconfig.New(tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, CheckInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())
	if got := ca.Serial(t, addr); got != 100 {
		t.Fatalf("serial = %d, want 100", got)
	}
	ca.Install(t, 101, certFile, keyFile)
	if got := ca.Serial(t, addr); got != 101 {
		t.Errorf("serial after the swap = %d, want 101, without a restart", got)
	}

	// Half replaced: a new key beside the old certificate. The last good
	// pair is served until the certificate follows.
	_, k := ca.Issue(t, 102)
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ca.Serial(t, addr); got != 101 {
		t.Errorf("serial with a mismatched pair on disk = %d, want 101 (the last good one)", got)
	}
	ca.Install(t, 103, certFile, keyFile)
	if got := ca.Serial(t, addr); got != 103 {
		t.Errorf("serial after the pair is whole again = %d, want 103", got)
	}
}

func TestFilesAreLookedAtOncePerInterval(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Install(t, 1, certFile, keyFile)
	r, err := tlsconfig.New(tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, CheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r.GetCertificate(nil) // the first look after New
	ca.Install(t, 2, certFile, keyFile)
	c, _ := r.GetCertificate(nil)
	if serial := leafSerial(t, c); serial != 1 {
		t.Errorf("serial within the check interval = %d, want 1 (no look yet)", serial)
	}
}

func leafSerial(t *testing.T, c *tls.Certificate) int64 {
	t.Helper()
	if c.Leaf != nil {
		return c.Leaf.SerialNumber.Int64()
	}
	t.Fatal("certificate without a parsed leaf")
	return 0
}

func TestNewRefusesMissingOrBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	for _, cfg := range []tlsconfig.Config{
		{},
		{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "missing.key")},
		{CertFile: bad, KeyFile: bad},
	} {
		if _, err := tlsconfig.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestSelfClientTrustsOnlyItsOwnCertificate(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	own := func(serial int64) *tlsconfig.Reloader {
		d := filepath.Join(dir, string(rune('a'+serial)))
		os.Mkdir(d, 0o700)
		c, k := filepath.Join(d, "c.pem"), filepath.Join(d, "k.pem")
		ca.Install(t, serial, c, k)
		r, err := tlsconfig.New(tlsconfig.Config{CertFile: c, KeyFile: k})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	me, other := own(1), own(2)
	addr := serve(t, me.ServerConfig())
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c, err := tls.DialWithDialer(d, "tcp", addr, me.SelfClientConfig()); err != nil {
		t.Errorf("self dial: %v", err)
	} else {
		c.Close()
	}
	if c, err := tls.DialWithDialer(d, "tcp", addr, other.SelfClientConfig()); err == nil {
		c.Close()
		t.Error("another server's self client accepted this server, want refused")
	}
}
