package nodetest

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs the package's tests and fails them if goroutines are
// left behind. Use it as TestMain in every package that starts nodes:
//
//	func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// grpc-web's timer library starts one goroutine at init, for the process.
		goleak.IgnoreTopFunction("github.com/desertbit/timer.timerRoutine"),
	)
}
