package node_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A dev token asked for over gRPC points at the node's own WebSocket
// endpoint, wherever the node listens.
func TestDevTokenPointsAtThisNode(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Dev: true})
	cc, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	res, err := chatv1.NewAuthServiceClient(cc).IssueToken(context.Background(), &chatv1.IssueTokenRequest{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ws://" + srv.HTTPAddr + "/api/v1/ws/authenticated?token="; !strings.HasPrefix(res.GetWebsocketUrl(), want) {
		t.Errorf("websocket_url %q, want it to start with %q", res.GetWebsocketUrl(), want)
	}
}
