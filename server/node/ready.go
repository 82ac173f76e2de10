package node

import (
	"context"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// fenceable is a broker that can be fenced off from its cluster (the Redis
// broker, when another broker claimed its node id while it was cut off from
// Redis): meanwhile it refuses every new session, and its node is not
// ready. FenceChanged returns a channel closed at the next change of
// Fenced: taken before Fenced is read, it misses none.
type fenceable interface {
	Fenced() bool
	FenceChanged() <-chan struct{}
}

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
// notReady until ctx ends, woken by the broker at each change of its fence
// rather than polling it. Once the node shuts down, the health server
// ignores it (Shutdown has set NOT_SERVING for good).
func (n *Node) watchReady(ctx context.Context) {
	f, ok := n.cfg.Broker.(fenceable)
	if !ok {
		return
	}
	ready := true
	for {
		changed := f.FenceChanged()
		if why := n.notReady(); (why == "") != ready {
			ready = why == ""
			// The broker logs why, when it is fenced and when it is no longer.
			if ready {
				n.setServing(healthpb.HealthCheckResponse_SERVING)
				n.log.Debug("ready again: serving")
			} else {
				n.setServing(healthpb.HealthCheckResponse_NOT_SERVING)
				n.log.Debug("not ready: reporting NOT_SERVING", "why", why)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// setServing reports st on grpc.health.v1, for the server as a whole and
// for the Chat service.
func (n *Node) setServing(st healthpb.HealthCheckResponse_ServingStatus) {
	n.health.SetServingStatus("", st)
	n.health.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, st)
}
