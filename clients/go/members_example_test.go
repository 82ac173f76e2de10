package client_test

import (
	"context"
	"fmt"
	"log"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

func ExampleClient_Members() {
	addr, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	for _, name := range []string{"carol", "alice", "bob"} {
		c, _ := client.Dial(addr, client.WithToken(token(name, false)))
		defer c.Close()
		s, _ := c.Connect(ctx)
		defer s.Close()
		s.Join("general")
		next(s, (*chatv1.ServerFrame).GetRoomJoined)
	}

	c, _ := client.Dial(addr, client.WithToken(token("dave", false))) // outside dev mode reads need a token
	defer c.Close()
	cursor := ""
	for {
		page, err := c.Members(ctx, "general", 2, cursor)
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range page.Members {
			fmt.Print(m.UserId, " ")
		}
		fmt.Println("of", page.TotalMembers)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	// Output:
	// alice bob of 3
	// carol of 3
}
