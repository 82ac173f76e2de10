package node_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// readPaths are the REST reads that need a token outside dev mode.
var readPaths = []string{"/api/v1/websocket/stats", "/api/v1/websocket/rooms", "/api/v1/websocket/users"}

// request calls url with method and token (none if "") and returns the
// status and the decoded JSON body.
func request(t *testing.T, method, url, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Errorf("%s %s: body is not JSON: %v", method, url, err)
	}
	return resp.StatusCode, body
}

// listServices asks for the services through reflection over conn,
// presenting token (none if "").
func listServices(t *testing.T, conn grpc.ClientConnInterface, token string) ([]string, error) {
	t.Helper()
	ctx := t.Context()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.CloseSend()
	// A refused stream fails Send with io.EOF; Recv has the status.
	stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	return names, nil
}

func TestReadsNeedATokenOutsideDevMode(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	tok := srv.Token(t, "alice", false)
	for _, path := range readPaths {
		code, body := request(t, http.MethodGet, srv.URL(path), "")
		if code != http.StatusUnauthorized || body["message"] == nil {
			t.Errorf("GET %s without a token: %d %v, want 401 with a JSON message", path, code, body)
		}
		if code, body := request(t, http.MethodGet, srv.URL(path), tok); code != http.StatusOK {
			t.Errorf("GET %s with a token: %d %v, want 200", path, code, body)
		}
	}

	anon := dial(t, srv, "")
	if _, err := anon.Stats(t.Context()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetStats without a token: %v, want Unauthenticated", err)
	}
	if _, err := listServices(t, anon.Conn(), ""); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without a token: %v, want Unauthenticated", err)
	}
	// Health checks stay open: load balancers carry no token.
	if resp, err := healthpb.NewHealthClient(anon.Conn()).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v, %v; want SERVING", resp, err)
	}

	authed := dial(t, srv, tok)
	if _, err := authed.Stats(t.Context()); err != nil {
		t.Errorf("GetStats with a token: %v", err)
	}
	if names, err := listServices(t, authed.Conn(), tok); err != nil || len(names) == 0 {
		t.Errorf("reflection with a token: %v, %v; want the services", names, err)
	}
	if _, err := listServices(t, anon.Conn(), "not-a-token"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection with a bad token: %v, want Unauthenticated", err)
	}
}

func TestDevModeServesReadsWithoutAToken(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Dev: true})
	for _, path := range readPaths {
		if code, body := request(t, http.MethodGet, srv.URL(path), ""); code != http.StatusOK {
			t.Errorf("dev GET %s without a token: %d %v, want 200", path, code, body)
		}
	}
	anon := dial(t, srv, "")
	if _, err := anon.Stats(t.Context()); err != nil {
		t.Errorf("dev GetStats without a token: %v", err)
	}
	if names, err := listServices(t, anon.Conn(), ""); err != nil || len(names) == 0 {
		t.Errorf("dev reflection without a token: %v, %v; want the services", names, err)
	}
}
