package bridge_test

import (
	"os"
	"testing"

	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestMain(m *testing.M) {
	if base := os.Getenv(idleClientsEnv); base != "" {
		os.Exit(runIdleClients(base))
	}
	nodetest.VerifyTestMain(m)
}
