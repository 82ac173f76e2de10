package hub_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core imports no transport (doc.go): no gRPC, protobuf, HTTP server or
// Redis client among its dependencies, however it comes to name the wire's
// codes.
func TestHubImportsNoTransport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/grpc-ecosystem", "github.com/redis/", "github.com/gobwas/", "net/http"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("server/hub depends on %s", dep)
			}
		}
	}
}
