package node_test

import (
	"testing"

	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }
