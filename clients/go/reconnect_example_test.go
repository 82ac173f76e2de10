package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// A Reconnecting session outlives the node it is on: when that node shuts
// down, it connects to the next address and joins its rooms again.
func ExampleReconnect() {
	first, token, stopFirst := exampleServer()
	second, _, stopSecond := exampleServer() // same secret: the token is good on both
	defer stopSecond()

	r, err := client.Reconnect(context.Background(), []string{first, second},
		client.WithToken(token("alice", false)),
		client.WithBackoff(client.Backoff{Min: 50 * time.Millisecond, Max: time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	nextOf(r, (*chatv1.ServerFrame).GetSystem)
	r.Join(context.Background(), "tapas")
	fmt.Println("joined", nextOf(r, (*chatv1.ServerFrame).GetRoomJoined).Room, "on the first node")

	stopFirst() // a restart: the session ends with Unavailable "service restart"
	nextOf(r, (*chatv1.ServerFrame).GetSystem)
	fmt.Println("joined", nextOf(r, (*chatv1.ServerFrame).GetRoomJoined).Room, "again, on the second node:", r.Addr() == second)
	// Output:
	// joined tapas on the first node
	// joined tapas again, on the second node: true
}

// nextOf returns the next event of the given kind.
func nextOf[T any](r *client.Reconnecting, get func(*chatv1.ServerFrame) *T) *T {
	for f := range r.Events() {
		if v := get(f); v != nil {
			return v
		}
	}
	return nil
}
