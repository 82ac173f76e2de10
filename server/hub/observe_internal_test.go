package hub

import "testing"

// Every command kind has its name in metrics: a kind added without one
// would be counted as "unknown".
func TestEveryCommandKindHasAName(t *testing.T) {
	for k := CmdMessage; k < numCommandKinds; k++ {
		if name := k.String(); name == "unknown" {
			t.Errorf("command kind %d has no name", k)
		}
	}
}
