package client_test

import (
	"context"
	"fmt"
	"log"
	"net"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
)

// exampleServer runs a node on a free loopback port for the examples and
// returns its gRPC address, a token minter and a stop function.
func exampleServer() (addr string, token func(user string, admin bool) string, stop func()) {
	return exampleServerWith(hub.Config{})
}

// exampleServerWith is exampleServer with the hub's settings.
func exampleServerWith(cfg hub.Config) (addr string, token func(user string, admin bool) string, stop func()) {
	secret := []byte("example-secret-0123456789abcdef")
	n, err := node.New(node.Config{JWT: auth.Config{Secret: secret}, Hub: cfg})
	if err != nil {
		log.Fatal(err)
	}
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Serve(ctx, gl, hl); close(done) }()
	a, _ := auth.New(auth.Config{Secret: secret})
	return gl.Addr().String(), func(u string, admin bool) string {
			t, _ := a.Issue(u, admin)
			return t
		}, func() {
			cancel()
			<-done
		}
}

// next returns the next event of the given kind.
func next[T any](s *client.Session, get func(*chatv1.ServerFrame) *T) *T {
	for f := range s.Events() {
		if v := get(f); v != nil {
			return v
		}
	}
	return nil
}

func Example() {
	addr, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	alice, _ := client.Dial(addr, client.WithToken(token("alice", false)))
	defer alice.Close()
	bob, _ := client.Dial(addr, client.WithToken(token("bob", false)))
	defer bob.Close()

	as, err := alice.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer as.Close()
	bs, _ := bob.Connect(ctx)
	defer bs.Close()

	as.Join("tapas")
	next(as, (*chatv1.ServerFrame).GetRoomJoined)
	bs.Join("tapas")
	next(bs, (*chatv1.ServerFrame).GetRoomJoined)

	as.Send("tapas", "¿una caña?")
	m := next(bs, (*chatv1.ServerFrame).GetMessage)
	fmt.Printf("bob read %q from %s in #%s\n", m.Message, m.Sender, m.Room)

	bs.Private("alice", "¡vale!")
	p := next(as, (*chatv1.ServerFrame).GetPrivateMessage)
	fmt.Printf("alice read %q from %s\n", p.Message, p.Sender)
	// Output:
	// bob read "¿una caña?" from alice in #tapas
	// alice read "¡vale!" from bob
}

func ExampleClient_Broadcast() {
	addr, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	guest, _ := client.Dial(addr, client.WithToken(token("guest", false)))
	defer guest.Close()
	s, _ := guest.Connect(ctx)
	defer s.Close()
	next(s, (*chatv1.ServerFrame).GetSystem)

	admin, _ := client.Dial(addr, client.WithToken(token("root", true)))
	defer admin.Close()
	n, err := admin.Broadcast(ctx, "closing in 5 minutes", "")
	if err != nil {
		log.Fatal(err)
	}
	b := next(s, (*chatv1.ServerFrame).GetAdminBroadcast)
	fmt.Printf("%d recipient(s); guest read %q\n", n, b.Message)
	// Output: 1 recipient(s); guest read "closing in 5 minutes"
}

func ExampleClient_Stats() {
	addr, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, _ := client.Dial(addr, client.WithToken(token("alice", false)))
	defer c.Close()
	s, _ := c.Connect(ctx)
	defer s.Close()
	s.Join("general")
	next(s, (*chatv1.ServerFrame).GetRoomJoined)

	st, err := c.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.TotalConnections, st.UniqueUsers, st.Rooms)
	// Output: 1 1 map[general:1]
}
