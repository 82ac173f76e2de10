package bridge_test

import (
	"github.com/tertulia/tertulia/server/logs/logstest"

	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/bridge"
	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// The seed's own test script: connect to /api/v1/ws, send {"message": ...},
// get the welcome and the broadcast.
func TestSeedFlow(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{AllowAnonymous: true}, bridge.Config{})
		other := guest(t, tg)
		g := guest(t, tg)
		if g.welcome.str("connection_id") == "" || !strings.HasPrefix(g.welcome.str("user_id"), "guest-") {
			t.Errorf("welcome = %v, want a connection_id and a guest user_id", g.welcome)
		}
		g.send(`{"message": "Mensaje de prueba automatizado"}`)
		for _, u := range []*wsUser{g, other} {
			f := u.await("the broadcast", isMessage("Mensaje de prueba automatizado"))
			if f.str("sender") != g.welcome.str("user_id") || f.str("user_id") != g.welcome.str("user_id") {
				t.Errorf("%s got %v, want sender and user_id %s", u.name, f, g.welcome.str("user_id"))
			}
			if _, ok := f["room"]; ok {
				t.Errorf("lobby message %v has a room, want none", f)
			}
		}
	})
}

func TestRoomsAndPrivateMessages(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		alice, bob, carol := login(t, tg, "alice"), login(t, tg, "bob"), login(t, tg, "carol")
		if got := alice.welcome.str("user_id"); got != "alice" {
			t.Errorf("alice's welcome user_id = %q, want alice", got)
		}
		alice.join("lounge")
		bob.join("lounge")
		alice.await("bob's room_joined", func(f frame) bool { return f.str("type") == "room_joined" && f.str("user_id") == "bob" })

		alice.sendJSON(map[string]string{"type": "message", "room": "lounge", "message": "hi bob", "id": "m1"})
		got := bob.await("alice's room message", isMessage("hi bob"))
		if got.str("sender") != "alice" || got.str("room") != "lounge" {
			t.Errorf("bob got %v, want sender alice in room lounge", got)
		}
		if echo := alice.await("her own room message", isMessage("hi bob")); echo.str("id") != "m1" {
			t.Errorf("alice's copy has id %q, want m1 echoed", echo.str("id"))
		}

		bob.sendJSON(map[string]string{"type": "private_message", "target_user": "alice", "message": "psst", "id": "p1"})
		pm := alice.await("bob's private message", isType("private_message"))
		if pm.str("sender") != "bob" || pm.str("message") != "psst" {
			t.Errorf("alice got %v, want psst from bob", pm)
		}
		sent := bob.await("private_sent", isType("private_sent"))
		if sent.str("target_user") != "alice" || sent["delivered"] != float64(1) || sent.str("id") != "p1" {
			t.Errorf("bob got %v, want private_sent to alice, delivered 1, id p1", sent)
		}

		// Carol is in no room: a lobby message is the last thing she gets,
		// and before it, nothing from the room or the private exchange.
		alice.sendJSON(map[string]string{"message": "hello all"})
		f := carol.await("lobby message", func(f frame) bool {
			if f.str("type") == "message" && f.str("room") != "" || f.str("type") == "private_message" {
				t.Errorf("carol got %v, want no room or private traffic", f)
			}
			return f.str("type") == "message" && f.str("message") == "hello all"
		})
		if f.str("sender") != "alice" {
			t.Errorf("lobby message sender = %q, want alice", f.str("sender"))
		}

		bob.sendJSON(map[string]string{"type": "leave_room", "room": "lounge"})
		left := alice.await("bob's room_left", isType("room_left"))
		if left.str("room") != "lounge" || left.str("user_id") != "bob" {
			t.Errorf("alice got %v, want bob leaving lounge", left)
		}
	})
}

func TestGuestsAndUsersTogether(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{Dev: true}, bridge.Config{})
		g := guest(t, tg)
		alice := login(t, tg, "alice")
		g.await("alice's user_joined", func(f frame) bool { return f.str("type") == "user_joined" && f.str("user_id") == "alice" })
		alice.sendJSON(map[string]string{"message": "welcome, guest"})
		if f := g.await("alice's message", isMessage("welcome, guest")); f.str("sender") != "alice" {
			t.Errorf("guest got %v, want it from alice", f)
		}
		g.sendJSON(map[string]string{"message": "thanks"})
		if f := alice.await("the guest's message", isMessage("thanks")); f.str("user_id") != g.welcome.str("user_id") {
			t.Errorf("alice got %v, want it from %s", f, g.welcome.str("user_id"))
		}
	})
}

// The token may come in the URL, as a subprotocol, or as the first frame.
func TestTokenCarriers(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		tok := tg.node.Token(t, "alice", false)

		u := connect(t, tg, "subprotocol", "/api/v1/ws/authenticated", dialOpts{protocols: []string{bridge.Subprotocol, "bearer." + tok}})
		if u.welcome.str("user_id") != "alice" {
			t.Errorf("welcome %v, want alice", u.welcome)
		}
		if u.proto != bridge.Subprotocol {
			t.Errorf("server chose subprotocol %q, want %q (never the token)", u.proto, bridge.Subprotocol)
		}

		u2, err := dialRaw(t, tg, "/api/v1/ws/authenticated", dialOpts{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		u2.name = "auth frame"
		u2.sendJSON(map[string]string{"type": "auth", "token": tok})
		if f := u2.next(); f.str("type") != "system" || f.str("user_id") != "alice" {
			t.Errorf("after the auth frame got %v, want alice's welcome", f)
		}
		u2.sendJSON(map[string]string{"type": "auth", "token": tok})
		u2.await("already_authenticated", isError(bridge.CodeAlreadyAuthenticated))

		// A token on the guest endpoint makes an authenticated session.
		u3 := connect(t, tg, "guest endpoint", "/api/v1/ws?token="+tok, dialOpts{})
		if u3.welcome.str("user_id") != "alice" {
			t.Errorf("welcome %v, want alice", u3.welcome)
		}
	})
}

// Bad frames get an error frame and the connection goes on.
func TestBadFramesAreAnswered(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		u := login(t, tg, "alice")
		for _, tc := range []struct {
			name, frame, code string
		}{
			{"invalid JSON", `{"message": `, bridge.CodeInvalidJSON},
			{"not an object", `["hi"]`, bridge.CodeInvalidFrame},
			{"unknown type", `{"type": "dance", "id": "d1"}`, bridge.CodeUnknownType},
			{"wrong-typed field", `{"type": "join_room", "room": 5}`, bridge.CodeInvalidFrame},
			{"empty message (the hub's check)", `{"message": ""}`, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u.t = t
				u.send(tc.frame)
				f := u.await("an error frame", isType("error"))
				if tc.code != "" && f.str("code") != tc.code {
					t.Errorf("got %v, want code %s", f, tc.code)
				}
				if f.str("message") == "" || f.str("code") == "" {
					t.Errorf("error frame %v lacks message or code", f)
				}
				if strings.Contains(tc.frame, `"id"`) && f.str("id") != "d1" {
					t.Errorf("error frame %v does not echo id d1", f)
				}
			})
		}
		u.t = t
		u.sendJSON(map[string]string{"message": "still here"})
		u.await("a message after the bad frames", isMessage("still here"))
	})
}

func TestRefusedTokensClose1008(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{AuthTimeout: 300 * time.Millisecond})
		expired := tokenFrom(t, auth.Config{Secret: nodetest.Secret, TTL: -time.Hour}, "alice")
		forged := tokenFrom(t, auth.Config{Secret: []byte("another-secret-0123456789abcdef!")}, "alice")
		for _, tc := range []struct {
			name, path string
			first      string // frame sent after the upgrade, if any
		}{
			{"forged token", "/api/v1/ws/authenticated?token=" + forged, ""},
			{"expired token", "/api/v1/ws/authenticated?token=" + expired, ""},
			{"garbage token", "/api/v1/ws/authenticated?token=not-a-jwt", ""},
			{"no token, silence", "/api/v1/ws/authenticated", ""},
			{"no token, chat first", "/api/v1/ws/authenticated", `{"message":"hi"}`},
			{"no token, invalid JSON first", "/api/v1/ws/authenticated", `{"type":"auth",`},
			{"bad token in auth frame", "/api/v1/ws/authenticated", `{"type":"auth","token":"` + forged + `"}`},
			{"guest where guests are not allowed", "/api/v1/ws", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, err := dialRaw(t, tg, tc.path, dialOpts{})
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				u.name = tc.name
				if tc.first != "" {
					u.send(tc.first)
				}
				// Nothing but the close may reach a refused client.
				f, err := u.read()
				code, ok := closeCode(err)
				switch {
				case ok && code != ws.StatusPolicyViolation:
					t.Errorf("close code %d, want 1008", code)
				case !ok && err != nil:
					t.Errorf("read: %v, want close 1008", err)
				case !ok:
					t.Errorf("got frame %v, want close 1008 before any chat traffic", f)
				}
			})
		}
	})
}

// A client that never sends the auth frame is closed within AuthTimeout
// even if it pings: a ping is no auth frame, and used to re-arm the wait
// for one, so slow pings held a connection open, unauthenticated, forever.
func TestAuthWaitIsNotExtendedByPings(t *testing.T) {
	const authTimeout = 300 * time.Millisecond
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{AuthTimeout: authTimeout})
		u, err := dialRaw(t, tg, "/api/v1/ws/authenticated", dialOpts{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		u.name = "pinger"
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			tick := time.NewTicker(authTimeout / 2)
			defer tick.Stop()
			for {
				if wsutil.WriteClientMessage(u.conn, ws.OpPing, nil) != nil {
					return // closed
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		defer func() { close(stop); <-stopped }()
		// The pongs are read and skipped; the close says what was missing,
		// not that the connection was idle.
		if code, reason := u.closed(); code != ws.StatusPolicyViolation || reason != "authentication required" {
			t.Errorf("close %d %q, want 1008 \"authentication required\"", code, reason)
		}
	})
}

func TestOversizeFrameCloses1009(t *testing.T) {
	runModesAndTLS(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{MaxFrameBytes: 1024})
		u := login(t, tg, "alice")
		u.send(`{"message":"` + strings.Repeat("x", 2048) + `"}`)
		if code, reason := u.closed(); code != ws.StatusMessageTooBig {
			t.Errorf("close code %d (%q), want 1009", code, reason)
		}
	})
}

func TestOrigins(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{AllowAnonymous: true, AllowedOrigins: []string{"https://chat.example.com"}}, bridge.Config{})
		devTg := start(t, m, node.Config{Dev: true}, bridge.Config{})
		for _, tc := range []struct {
			name   string
			tg     *target
			origin string
			ok     bool
		}{
			{"no origin (not a browser)", tg, "", true},
			{"same origin", tg, "http://" + tg.host, true},
			{"allowed origin", tg, "https://chat.example.com", true},
			{"cross origin", tg, "https://evil.example", false},
			{"allowed host, other scheme", tg, "http://chat.example.com", false},
			{"localhost without dev", tg, "http://localhost:3000", false},
			{"localhost in dev", devTg, "http://localhost:3000", true},
			{"127.0.0.1 in dev", devTg, "http://127.0.0.1:5173", true},
			{"cross origin in dev", devTg, "https://evil.example", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := http.Header{}
				if tc.origin != "" {
					h.Set("Origin", tc.origin)
				}
				u, err := dialRaw(t, tc.tg, "/api/v1/ws", dialOpts{header: h})
				if !tc.ok {
					var se ws.StatusError
					if !errors.As(err, &se) || int(se) != http.StatusForbidden {
						t.Fatalf("dial from %q: err %v, want HTTP 403 before the upgrade", tc.origin, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("dial from %q: %v, want accepted", tc.origin, err)
				}
				u.name = tc.name
				if f := u.next(); f.str("type") != "system" {
					t.Errorf("first frame %v, want the welcome", f)
				}
			})
		}
	})
}

// A gRPC client and a browser client in the same room see each other.
func TestGRPCAndWebSocketShareRooms(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		web := login(t, tg, "alice")
		web.join("lounge")

		c, err := client.Dial(tg.node.GRPCAddr, client.WithToken(tg.node.Token(t, "bob", false)))
		if err != nil {
			t.Fatalf("dial grpc: %v", err)
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := c.Connect(ctx)
		if err != nil {
			t.Fatalf("connect grpc: %v", err)
		}
		defer s.Close()
		if err := s.Join("lounge"); err != nil {
			t.Fatal(err)
		}
		awaitGRPC(t, s, "bob's room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "bob" })
		if err := s.Send("lounge", "from grpc"); err != nil {
			t.Fatal(err)
		}
		if f := web.await("the gRPC client's message", isMessage("from grpc")); f.str("sender") != "bob" || f.str("room") != "lounge" {
			t.Errorf("browser got %v, want bob's message in lounge", f)
		}
		web.sendJSON(map[string]string{"room": "lounge", "message": "from the browser"})
		f := awaitGRPC(t, s, "the browser's message", func(f *chatv1.ServerFrame) bool { return f.GetMessage().GetMessage() == "from the browser" })
		if got := f.GetMessage(); got.Sender != "alice" || got.Room != "lounge" {
			t.Errorf("gRPC client got %v, want alice's message in lounge", got)
		}
	})
}

func awaitGRPC(t *testing.T, s *client.Session, what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case f, ok := <-s.Events():
			if !ok {
				t.Fatalf("gRPC session ended waiting for %s: %v", what, s.Err())
			}
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("gRPC client: no %s within %v", what, waitTimeout)
			return nil
		}
	}
}

// A server going away closes browsers with 1012 "service restart": they
// come back after a random wait, to whichever node answers. A restart is
// routine: nothing is warned of, session by session.
func TestShutdownCloses1012(t *testing.T) {
	runModesAndTLS(t, func(t *testing.T, m mode) {
		var logs logstest.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		tg := start(t, m, node.Config{Logger: log}, bridge.Config{AuthTimeout: time.Minute, Logger: log})
		u := login(t, tg, "alice")
		waiting, err := dialRaw(t, tg, "/api/v1/ws/authenticated", dialOpts{}) // still to send its auth frame
		if err != nil {
			t.Fatal(err)
		}
		waiting.name = "unauthenticated"
		tg.node.Stop(t)
		if code, reason := u.closed(); code != bridge.StatusServiceRestart || reason != "service restart" {
			t.Errorf("close %d %q, want 1012 \"service restart\"", code, reason)
		}
		if m == inProcess { // the remote bridge itself is not shutting down
			if code, _ := waiting.closed(); code != bridge.StatusServiceRestart {
				t.Errorf("waiting connection: close %d, want 1012", code)
			}
		}
		u.conn.Close()
		if logs.Await(waitTimeout, `msg="websocket closed"`, "code=1012") == "" {
			t.Fatalf("the close is not logged, so the test proves nothing; logs:\n%s", logs.String())
		}
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				t.Errorf("a restart is warned of: %s", line)
			}
		}
	})
}

// Pings keep a connection that sends nothing alive; one that does not even
// answer pings is closed after two intervals.
func TestPingsKeepIdleConnectionsAlive(t *testing.T) {
	runModesAndTLS(t, func(t *testing.T, m mode) {
		const interval = 100 * time.Millisecond
		tg := start(t, m, node.Config{}, bridge.Config{PingInterval: interval})
		alive := login(t, tg, "alice") // reads, so answers pings
		deaf := login(t, tg, "bob")    // reads nothing: no pongs
		// alice reads (so answers pings) and sends nothing for six
		// intervals. One reader reads with no deadline of its own: a read
		// cut short by a deadline could stop in the middle of a frame.
		messages := make(chan string, 16)
		go func() {
			defer close(messages)
			for {
				f, err := alive.read()
				if err != nil {
					return
				}
				if f.str("type") == "message" {
					messages <- f.str("message")
				}
			}
		}()
		time.Sleep(6 * interval)
		if code, _ := deaf.closed(); code != ws.StatusPolicyViolation {
			t.Errorf("silent connection closed with %d, want 1008", code)
		}
		alive.sendJSON(map[string]string{"message": "still alive"})
		select {
		case m, ok := <-messages:
			if !ok || m != "still alive" {
				t.Errorf("idle but answering connection: got %q (open: %v), want its own message", m, ok)
			}
		case <-time.After(waitTimeout):
			t.Error("idle but answering connection: no message back")
		}
	})
}

// A browser that does not read is disconnected; the others get everything
// and nobody waits for it.
func TestSlowConsumerIsDisconnected(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		// 16 MB: more than the slow client's socket buffers (they grow to
		// about 10 MB on loopback) and its 1 MB queue hold.
		const n, size, window = 4000, 4000, 100
		// The write timeout is far longer than the test: on a loaded
		// machine the sender is slow, and a 1 s timeout ended the stuck
		// writer (write_error) before the queue could overflow (slow).
		tg := start(t, m, node.Config{Hub: hub.Config{QueueFrames: 512, QueueBytes: 1 << 20}, Limits: nodetest.Unlimited()}, bridge.Config{WriteTimeout: 5 * time.Minute})
		login(t, tg, "slow") // reads nothing from now on
		fast := login(t, tg, "fast")
		sender := login(t, tg, "sender")
		var counts [2]atomic.Int64
		done := make(chan struct{}, 2)
		for i, u := range []*wsUser{fast, sender} {
			go func() {
				defer func() { done <- struct{}{} }()
				for counts[i].Load() < n {
					f, err := u.read()
					if err != nil {
						t.Errorf("%s: %v after %d messages, want all %d", u.name, err, counts[i].Load(), n)
						return
					}
					if f.str("type") == "message" {
						counts[i].Add(1)
					}
				}
			}()
		}
		text := strings.Repeat("x", size)
		for sent := range n {
			// Keep the readers within a window, so that only the one that
			// does not read at all overflows its queue.
			for deadline := time.Now().Add(waitTimeout); counts[0].Load() < int64(sent-window) || counts[1].Load() < int64(sent-window); {
				if time.Now().After(deadline) {
					t.Fatalf("readers stuck at %d and %d of %d sent", counts[0].Load(), counts[1].Load(), sent)
				}
				time.Sleep(time.Millisecond)
			}
			sender.sendJSON(map[string]string{"message": text})
		}
		<-done
		<-done
		// The slow one is gone (its socket is full: a close frame may not
		// reach it, so the test asks the hub rather than the socket).
		for deadline := time.Now().Add(2 * waitTimeout); ; time.Sleep(10 * time.Millisecond) {
			st, err := tg.node.Node.Hub().Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.TotalConnections == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sessions = %d, want 2: the slow consumer is still connected", st.TotalConnections)
			}
		}
		if m == inProcess && tg.node.Node.Hub().Metrics().SlowDisconnects.Load() != 1 {
			var reasons []string
			tg.node.Node.Hub().Metrics().Disconnects(func(r string, n int64) { reasons = append(reasons, fmt.Sprintf("%s=%d", r, n)) })
			t.Errorf("slow disconnects = %d, want 1 (sessions ended by reason: %v)", tg.node.Node.Hub().Metrics().SlowDisconnects.Load(), reasons)
		}
	})
}

// However the browser's bytes arrive, each message is carried out once and
// in order: several frames in one segment, a frame split over several
// segments with pauses, and a message in fragments with a ping between them.
func TestFramesHoweverTheyArrive(t *testing.T) {
	runModesAndTLS(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		u := login(t, tg, "alice")
		frameOf := func(op ws.OpCode, fin bool, text string) []byte {
			var b bytes.Buffer
			f := ws.MaskFrameInPlace(ws.NewFrame(op, fin, []byte(text)))
			if err := ws.WriteFrame(&b, f); err != nil {
				t.Fatal(err)
			}
			return b.Bytes()
		}
		msg := func(text string) []byte { return frameOf(ws.OpText, true, `{"message":"`+text+`"}`) }
		write := func(b []byte) {
			t.Helper()
			if _, err := u.conn.Write(b); err != nil {
				t.Fatal(err)
			}
		}

		write(append(append(msg("one"), msg("two")...), msg("three")...))
		split := msg("four")
		for _, part := range [][]byte{split[:1], split[1:5], split[5:]} {
			write(part)
			time.Sleep(20 * time.Millisecond)
		}
		write(frameOf(ws.OpText, false, `{"message":`))
		write(frameOf(ws.OpPing, true, "still here"))
		write(frameOf(ws.OpContinuation, true, `"five"}`))

		for _, want := range []string{"one", "two", "three", "four", "five"} {
			if f := u.await("message "+want, isType("message")); f.str("message") != want {
				t.Fatalf("got message %q, want %q", f.str("message"), want)
			}
		}
	})
}
