package cluster_test

import (
	"testing"

	"github.com/tertulia/tertulia/server/node/nodetest"
)

// nodetest.VerifyTestMain is goleak's check, knowing the goroutines a node's
// libraries start once per process.
func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }
