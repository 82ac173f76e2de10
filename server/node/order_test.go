package node_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// Every member of a room sees the room's messages in one order, even when
// several members publish at once.
func TestRoomOrderIsTheSameForEveryMember(t *testing.T) {
	const perSender = 200
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	members := []*user{connect(t, srv, "ana"), connect(t, srv, "ben"), connect(t, srv, "cy")}
	for _, u := range members {
		u.join("race")
	}
	// Everyone has seen the last join before anyone publishes.
	last := members[len(members)-1]
	for _, u := range members[:len(members)-1] {
		u.await(last.name+" joined", func(f *chatv1.ServerFrame) bool {
			return f.GetRoomJoined() != nil && f.GetRoomJoined().UserId == last.name
		})
	}

	var wg sync.WaitGroup
	for _, sender := range members[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				if err := sender.s.Send("race", fmt.Sprintf("%s-%d", sender.name, i)); err != nil {
					t.Errorf("%s: send: %v", sender.name, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	seen := make([][]string, len(members))
	for i, u := range members {
		for len(seen[i]) < 2*perSender {
			m := u.await("room message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage()
			seen[i] = append(seen[i], m.Message)
		}
	}
	for i := 1; i < len(members); i++ {
		if !slices.Equal(seen[i], seen[0]) {
			t.Errorf("%s saw a different order from %s", members[i].name, members[0].name)
		}
	}
}
