package node

import (
	"context"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// fenceable is a broker that can be fenced off from its cluster (the Redis
// broker, when another broker claimed its node id while it was cut off from
// Redis): meanwhile it refuses every new session, and its node is not
// ready.
type fenceable interface{ Fenced() bool }

// readyPoll is how often a node asks its broker whether it is fenced off,
// to say so on grpc.health.v1 (whose watchers are told at each change).
const readyPoll = 200 * time.Millisecond

// notReady is why the node, serving, is not ready for new sessions: "" if
// it is; "fenced" while its broker is fenced off. /health answers 503
// with it as its status, and grpc.health.v1 NOT_SERVING.
func (n *Node) notReady() string {
	if f, ok := n.cfg.Broker.(fenceable); ok && f.Fenced() {
		return "fenced"
	}
	return ""
}

// watchReady keeps grpc.health.v1, SERVING as Serve set it, in step with
// notReady until ctx ends. Once the node shuts down, the health server
// ignores it (Shutdown has set NOT_SERVING for good).
func (n *Node) watchReady(ctx context.Context) {
	set := func(st healthpb.HealthCheckResponse_ServingStatus) {
		n.health.SetServingStatus("", st)
		n.health.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, st)
	}
	if _, ok := n.cfg.Broker.(fenceable); !ok {
		return
	}
	ready := true
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		why := n.notReady()
		if now := why == ""; now == ready {
			continue
		}
		ready = why == ""
		// The broker logs why, when it is fenced and when it is no longer.
		if ready {
			set(healthpb.HealthCheckResponse_SERVING)
			n.log.Debug("ready again: serving")
		} else {
			set(healthpb.HealthCheckResponse_NOT_SERVING)
			n.log.Debug("not ready: reporting NOT_SERVING", "why", why)
		}
	}
}
