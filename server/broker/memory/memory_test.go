package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/broker/brokertest"
	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The memory broker is a cluster of one node.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(*testing.T) []hub.Broker { return []hub.Broker{memory.New()} })
}
