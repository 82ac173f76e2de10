package web_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRecoveryModule runs recovery_test.mjs: static/recovery.js's choices
// (what a page sends on a new connection, which frames it shows) in Node.
func TestRecoveryModule(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) not found: run `make deps` (Debian: apt-get install nodejs)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, nodeBin, "recovery_test.mjs").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("recovery_test.mjs: %v\n%s", err, out)
	}
}
