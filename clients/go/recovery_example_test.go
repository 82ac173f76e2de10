package client_test

import (
	"context"
	"fmt"
	"log"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// fresh returns the next frame of s that rec has not seen before, of the
// given kind.
func fresh[T any](s *client.Session, rec *client.Recovery, get func(*chatv1.ServerFrame) *T) *T {
	for f := range s.Events() {
		if v := get(f); rec.Observe(f) && v != nil {
			return v
		}
	}
	return nil
}

// withBob dials alice, and connects bob to room: the examples' cast.
func withBob(addr string, token func(string, bool) string, room string) (alice *client.Client, bs *client.Session, done func()) {
	alice, _ = client.Dial(addr, client.WithToken(token("alice", false)))
	bob, _ := client.Dial(addr, client.WithToken(token("bob", false)))
	bs, _ = bob.Connect(context.Background())
	bs.Join(room)
	next(bs, (*chatv1.ServerFrame).GetRoomJoined)
	return alice, bs, func() {
		bs.Close()
		bob.Close()
		alice.Close()
	}
}

// A connection drops; what was said meanwhile, in the room and in private,
// comes on the next one, once, and the message whose ack was lost is sent
// again without being delivered twice.
func ExampleRecovery() {
	addr, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	alice, bs, done := withBob(addr, token, "tapas")
	defer done()

	rec := client.NewRecovery()
	as, err := alice.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fresh(as, rec, (*chatv1.ServerFrame).GetSystem)
	as.SendFrame(rec.Join("tapas", 0))
	fresh(as, rec, (*chatv1.ServerFrame).GetRoomJoined)
	as.SendFrame(rec.Track(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: "tapas", Message: "¿una caña?"}}}))
	next(bs, (*chatv1.ServerFrame).GetMessage)
	as.Close() // the connection drops before alice reads the ack

	bs.Send("tapas", "¡vale!")
	next(bs, (*chatv1.ServerFrame).GetMessage) // bob's own copy: the room holds it
	bs.Private("alice", "¿dónde?")
	next(bs, (*chatv1.ServerFrame).GetPrivateSent)

	as, _ = alice.Connect(ctx)
	defer as.Close()
	fresh(as, rec, (*chatv1.ServerFrame).GetSystem)
	rec.Resume(as) // join again since the last message seen, recover the inbox, resend
	j := fresh(as, rec, (*chatv1.ServerFrame).GetRoomJoined)
	fmt.Printf("back in #%s, recovered: %v\n", j.Room, j.GetRecovered())
	for range 2 { // alice's own message, sent once, then bob's
		m := fresh(as, rec, (*chatv1.ServerFrame).GetMessage)
		fmt.Printf("#%s %d %s: %s\n", m.Room, m.Offset, m.Sender, m.Message)
	}
	p := fresh(as, rec, (*chatv1.ServerFrame).GetPrivateMessage)
	fmt.Printf("private from %s: %s\n", p.Sender, p.Message)
	fresh(as, rec, (*chatv1.ServerFrame).GetAck)
	fmt.Println("unacknowledged:", len(rec.Pending()))
	// Output:
	// back in #tapas, recovered: true
	// #tapas 1 alice: ¿una caña?
	// #tapas 2 bob: ¡vale!
	// private from bob: ¿dónde?
	// unacknowledged: 0
}

// More was said while the client was away than the room's history holds:
// the server says recovered false and replays nothing; Reload fetches what
// the history still has.
func ExampleRecovery_Reload() {
	addr, token, stop := exampleServerWith(hub.Config{History: func(string) hub.LogLimits { return hub.LogLimits{Size: 3} }})
	defer stop()
	ctx := context.Background()
	alice, bs, done := withBob(addr, token, "tapas")
	defer done()

	rec := client.NewRecovery()
	as, _ := alice.Connect(ctx)
	fresh(as, rec, (*chatv1.ServerFrame).GetSystem)
	as.SendFrame(rec.Join("tapas", 0))
	fresh(as, rec, (*chatv1.ServerFrame).GetRoomJoined)
	as.Close()
	for _, text := range []string{"uno", "dos", "tres", "cuatro", "cinco"} {
		bs.Send("tapas", text)
		next(bs, (*chatv1.ServerFrame).GetMessage)
	}

	as, _ = alice.Connect(ctx)
	defer as.Close()
	fresh(as, rec, (*chatv1.ServerFrame).GetSystem)
	rec.Resume(as)
	j := fresh(as, rec, (*chatv1.ServerFrame).GetRoomJoined)
	fmt.Printf("back in #%s at %d, recovered: %v\n", j.Room, j.Offset, j.GetRecovered())
	missed, err := rec.Reload(ctx, alice, "tapas", 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range missed {
		fmt.Printf("%d %s: %s\n", m.Offset, m.Sender, m.Message)
	}
	// Output:
	// back in #tapas at 5, recovered: false
	// 3 bob: tres
	// 4 bob: cuatro
	// 5 bob: cinco
}
