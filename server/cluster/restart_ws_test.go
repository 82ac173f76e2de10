package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/server/node/nodetest"
)

// wsMember is a browser of the rolling-restart test: a WebSocket that,
// when its node closes it (1012) or it drops, waits a random moment and
// connects to the next node, joining its room again since the last offset
// it read, as the rooms page does.
type wsMember struct {
	*member
	addrs []string // HTTP addresses
	token string

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu    sync.Mutex // protects conn and codes
	conn  net.Conn
	codes []ws.StatusCode // close codes read
}

// position is a place in a room's log, as JSON frames carry it.
type position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// serverFrame is what wsMember reads of a server frame.
type serverFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Room      string `json:"room"`
	Message   string `json:"message"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Recovered *bool  `json:"recovered"`
}

func startWSMember(m *member, addrs []string, token string) *wsMember {
	w := &wsMember{member: m, addrs: addrs, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// run connects, reads until the connection ends, and connects again to the
// next node, until close.
func (w *wsMember) run() {
	defer close(w.done)
	var since *position
	for i := 0; ; i++ {
		since = w.session(w.addrs[i%len(w.addrs)], since)
		select {
		case <-w.stop:
			return
		case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
		}
	}
}

// session runs one connection to addr, joining the room since where the
// last one left off; it returns the position it leaves off at.
func (w *wsMember) session(addr string, since *position) *position {
	u := "ws://" + addr + "/api/v1/ws/authenticated?token=" + url.QueryEscape(w.token)
	conn, br, _, err := ws.Dialer{Timeout: waitTimeout}.Dial(context.Background(), u)
	if err != nil {
		return since
	}
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
	defer conn.Close()
	select {
	case <-w.stop:
		return since
	default:
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{r, conn}
	join := map[string]any{"type": "join_room", "room": w.room, "id": "rejoin"}
	if since != nil {
		join["since"] = since
	}
	b, _ := json.Marshal(join)
	if wsutil.WriteClientText(conn, b) != nil {
		return since
	}
	for {
		data, _, err := nodetest.ReadServerData(rw)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				w.mu.Lock()
				w.codes = append(w.codes, ce.Code)
				w.mu.Unlock()
			}
			return since
		}
		var f serverFrame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch {
		case f.Type == "room_joined" && f.ID == "rejoin" && (f.Recovered == nil || !*f.Recovered):
			since = &position{Offset: f.Offset, Epoch: f.Epoch}
		case f.Type == "message" && f.Room == w.room:
			w.record(f.Message)
			since = &position{Offset: f.Offset, Epoch: f.Epoch}
		}
	}
}

// close stops the member and waits for it. It may be called twice.
func (w *wsMember) close() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
	}
	w.mu.Unlock()
	<-w.done
}

// closeCodes are the close codes the member's connections were closed with.
func (w *wsMember) closeCodes() []ws.StatusCode {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ws.StatusCode(nil), w.codes...)
}
