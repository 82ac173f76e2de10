package client_test

import (
	"context"
	"fmt"
	"log"

	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// A session is handed a new token before its own expires; when an
// administrator ends it, Reason says why and the status message gives the
// administrator's words.
func ExampleSession_Refresh() {
	addr, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	alice, _ := client.Dial(addr, client.WithToken(token("alice", false)))
	defer alice.Close()
	s, err := alice.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	w := next(s, (*chatv1.ServerFrame).GetSystem)
	fmt.Println("welcome says when the token expires:", w.ExpiresAt != nil)

	s.Refresh(token("alice", false))
	r := next(s, (*chatv1.ServerFrame).GetRefreshed)
	fmt.Println("refreshed:", !r.ExpiresAt.AsTime().Before(w.ExpiresAt.AsTime()))

	root, _ := client.Dial(addr, client.WithToken(token("root", true)))
	defer root.Close()
	if _, err := root.DisconnectUser(ctx, "alice", "cool off"); err != nil {
		log.Fatal(err)
	}
	for range s.Events() {
	}
	fmt.Printf("ended: %s, %q\n", client.Reason(s.Err()), status.Convert(s.Err()).Message())
	// Output:
	// welcome says when the token expires: true
	// refreshed: true
	// ended: disconnected, "cool off"
}
