package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
	"github.com/tertulia/tertulia/server/tlsconfig"
	"github.com/tertulia/tertulia/server/tlsconfig/tlstest"
)

// startTLS runs a node with cfg whose HTTP port speaks TLS, with a
// certificate of a throwaway CA, and returns it as a target that its
// clients reach over wss://, trusting that CA.
func startTLS(tb testing.TB, cfg node.Config) *target {
	tb.Helper()
	var client *tls.Config
	cfg.TLS, client = testCert(tb)
	srv := nodetest.Start(tb, cfg)
	return &target{node: srv, wsBase: "wss://" + srv.HTTPAddr, host: srv.HTTPAddr, tls: client}
}

// testCert returns a server's certificate from a throwaway CA, and a client
// configuration that trusts that CA.
func testCert(tb testing.TB) (*tlsconfig.Reloader, *tls.Config) {
	tb.Helper()
	ca := tlstest.NewCA(tb)
	r, _ := ca.Reloader(tb)
	return r, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
}

// A TLS handshake, or the head after it, that stops coming is cut off at
// the handshake deadline: the TLS handshake runs under the deadline of the
// head's first read (Listener).
func TestSlowTLSHandshakeIsCutOff(t *testing.T) {
	r, client := testCert(t)
	addr, _, _ := listenCounting(t, 300*time.Millisecond, func(l net.Listener) net.Listener {
		return tls.NewListener(l, r.ServerConfig("http/1.1"))
	})
	cutOff := func(what string, c net.Conn) {
		t.Helper()
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		if n, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
			t.Errorf("%s: read %d bytes, %v; want the connection closed at the handshake deadline", what, n, err)
		}
	}

	silent, err := net.Dial("tcp", addr) // not even a ClientHello
	if err != nil {
		t.Fatal(err)
	}
	cutOff("no TLS handshake", silent)

	slow, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	io.WriteString(slow, "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\n")
	cutOff("a head that stops after the TLS handshake", slow)
}

// heldFrame is the i-th frame of TestTLSHeldFrames: a message to room whose
// frame, masked as a client's, is exactly heldFrameBytes long.
func heldFrame(t *testing.T, room string, i int) (text string, frame []byte) {
	t.Helper()
	const header = 6 // 2 bytes, then the 4 of the mask: the payload is under 126 bytes
	text = fmt.Sprintf("held %03d ", i)
	b, _ := json.Marshal(map[string]string{"type": "message", "room": room, "message": text})
	text += strings.Repeat("x", heldFrameBytes-header-len(b))
	b, _ = json.Marshal(map[string]string{"type": "message", "room": room, "message": text})
	var buf bytes.Buffer
	if err := wsutil.WriteClientText(&buf, b); err != nil || buf.Len() != heldFrameBytes {
		t.Fatalf("frame %d is %d bytes (%v), want %d", i, buf.Len(), err, heldFrameBytes)
	}
	return text, buf.Bytes()
}

// heldFrameBytes divides the bridge's read buffer (1 KiB): a read of it
// that is full ends at a frame's end.
const heldFrameBytes = 128

// TestTLSHeldFrames sends frames over wss faster than the bridge reads
// them, and checks that every one is answered. After a burst the bridge
// waits for the TCP socket to become readable; a frame that tls.Conn
// already holds does not make it so, and would sit unread, its answer
// never coming. The frames are 128 bytes, so the bridge's 1 KiB read
// buffer empties at a frame's end every eight frames, while tls.Conn holds
// the rest:
//   - decrypted: all the frames in one record, read whole off the socket
//     (a record is decrypted whole);
//   - in whole records, read off the socket together: eight frames to a
//     record, all in one TCP write.
func TestTLSHeldFrames(t *testing.T) {
	const n = 60
	tg := startTLS(t, node.Config{Limits: nodetest.Unlimited()})
	var frames [][]byte
	texts := make([]string, n)
	for i := range n {
		var f []byte
		texts[i], f = heldFrame(t, "held", i)
		frames = append(frames, f)
	}
	answered := func(u *wsUser) {
		t.Helper()
		for i, text := range texts {
			u.await(fmt.Sprintf("the answer to frame %d of %d", i, n), isMessage(text))
		}
	}

	t.Run("one record", func(t *testing.T) {
		cfg := tg.tls.Clone()
		cfg.DynamicRecordSizingDisabled = true // records up to 16 KiB from the start
		u := loginWith(t, tg, "rena", dialOpts{tls: cfg})
		u.join("held")
		if _, err := u.conn.Write(bytes.Join(frames, nil)); err != nil {
			t.Fatalf("write the frames: %v", err)
		}
		answered(u)
	})

	t.Run("records in one segment", func(t *testing.T) {
		sc, o := segmented()
		u := loginWith(t, tg, "seg", o)
		u.join("held")
		sc.hold = true
		for f := frames; len(f) > 0; f = f[min(8, len(f)):] {
			if _, err := u.conn.Write(bytes.Join(f[:min(8, len(f))], nil)); err != nil { // one record
				t.Fatalf("write the frames: %v", err)
			}
		}
		if err := sc.flush(); err != nil {
			t.Fatalf("write the records: %v", err)
		}
		answered(u)
	})
}

// segmentConn is a client's TCP connection that, while hold is set, keeps
// what is written for flush to send in one write: TLS records written one
// by one reach the server together.
type segmentConn struct {
	net.Conn
	hold bool
	held []byte
}

// segmented returns dial options whose TCP connection is the segmentConn
// it also returns, set once dialed.
func segmented() (*segmentConn, dialOpts) {
	sc := new(segmentConn)
	return sc, dialOpts{netDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: waitTimeout}).DialContext(ctx, network, addr)
		sc.Conn = c
		return sc, err
	}}
}

func (c *segmentConn) Write(p []byte) (int, error) {
	if c.hold {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *segmentConn) flush() error {
	c.hold = false
	c.Conn.SetWriteDeadline(time.Time{}) // a close_notify leaves one in the past
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// TestTLSFramesWithTheUpgrade sends a frame right behind the upgrade
// request, in a record of its own, before the answer: the TLS handshake's
// reads may take it off the socket along with the request, and it must
// still be answered.
func TestTLSFramesWithTheUpgrade(t *testing.T) {
	tg := startTLS(t, node.Config{Limits: nodetest.Unlimited()})
	tcp, err := (&net.Dialer{Timeout: waitTimeout}).Dial("tcp", tg.host)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	sc := &segmentConn{Conn: tcp}
	cfg := tg.tls.Clone()
	cfg.ServerName, _, _ = net.SplitHostPort(tg.host)
	conn := tls.Client(sc, cfg)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitTimeout))
	if err := conn.Handshake(); err != nil {
		t.Fatalf("tls handshake: %v", err)
	}
	// The request and the frame, a record each, in one TCP write: the
	// server's read of the request takes both records off the socket.
	sc.hold = true
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", authPath(t, tg, "ugo"), tg.host)
	if err := wsutil.WriteClientText(conn, []byte(`{"type":"join_room","room":"early"}`)); err != nil {
		t.Fatalf("send join_room: %v", err)
	}
	if err := sc.flush(); err != nil {
		t.Fatalf("write the records: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v; want 101", resp, err)
	}
	u := &wsUser{t: t, name: "ugo", conn: conn, rw: struct {
		io.Reader
		io.Writer
	}{br, conn}}
	u.await("room_joined early", func(f frame) bool { return f.str("type") == "room_joined" && f.str("room") == "early" })
}

// TestTLSCloseNotifyIsSeen ends a wss client's TLS with close_notify right
// behind a frame, in one TCP write, and keeps its TCP connection open: the
// bridge must see the end in what tls.Conn holds, not wait on a socket that
// has nothing more to say, and close the connection.
func TestTLSCloseNotifyIsSeen(t *testing.T) {
	tg := startTLS(t, node.Config{Limits: nodetest.Unlimited()})
	sc, o := segmented()
	u := loginWith(t, tg, "nora", o)
	sc.hold = true
	u.sendJSON(map[string]string{"type": "join_room", "room": "notify"})
	if err := u.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("close_notify: %v", err)
	}
	if err := sc.flush(); err != nil {
		t.Fatalf("write the records: %v", err)
	}
	if code, _ := u.closed(); code != ws.StatusNormalClosure {
		t.Errorf("close %d, want 1000", code)
	}
}

// TestTLSAlertBehindHeldFrames sends, over TLS 1.2, 15 frames and half of
// a 16th in one record, then a close_notify of which only the first bytes
// come with them. The bridge reads the first 1 KiB of frames, and when its
// buffer empties takes the rest from what tls.Conn holds, under an expired
// deadline: tls.Conn, having given out the last of the record, reads on
// into the alert behind it and returns the frames with a timeout. That
// timeout must not stay in the read buffer: the read of the rest of the
// 16th frame, under a real deadline, failed at once and closed the
// connection as idle (1008) rather than as the browser closed it (1000).
// (Were the alert one crypto/tls passes over, such as user_canceled, a
// healthy connection was closed.)
func TestTLSAlertBehindHeldFrames(t *testing.T) {
	const n = 16 // two read buffers' worth
	tg := startTLS(t, node.Config{Limits: nodetest.Unlimited()})
	sc, o := segmented()
	o.tls = tg.tls.Clone()
	o.tls.DynamicRecordSizingDisabled = true // one record for all 16 frames
	// TLS 1.2: tls.Conn reads on into an alert only if it can tell one,
	// and TLS 1.3 seals every record's type.
	o.tls.MaxVersion = tls.VersionTLS12
	u := loginWith(t, tg, "alba", o)
	u.join("alert")
	var frames [][]byte
	texts := make([]string, n)
	for i := range n {
		var f []byte
		texts[i], f = heldFrame(t, "alert", i)
		frames = append(frames, f)
	}
	sc.hold = true
	sent := bytes.Join(frames, nil)
	if _, err := u.conn.Write(sent[:len(sent)-heldFrameBytes/2]); err != nil { // the last frame cut short
		t.Fatalf("write the frames: %v", err)
	}
	if err := u.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("close_notify: %v", err)
	}
	records := sc.held
	last := 0 // where the last record, the close_notify, starts
	for i := 0; i+5 <= len(records); i += 5 + int(binary.BigEndian.Uint16(records[i+3:])) {
		last = i
	}
	if records[last] != 21 { // an alert
		t.Fatalf("the last record written is of type %d, want an alert (21)", records[last])
	}
	cut := last + 6 // the frames, and the alert's header and a byte
	sc.held = records[:cut]
	if err := sc.flush(); err != nil {
		t.Fatalf("write the frames: %v", err)
	}
	for i, text := range texts[:n-1] {
		u.await(fmt.Sprintf("the answer to frame %d of %d", i, n), isMessage(text))
	}
	time.Sleep(100 * time.Millisecond) // the bridge is past its first read of the alert
	if _, err := sc.Conn.Write(records[cut:]); err != nil {
		t.Fatalf("write the rest of the alert: %v", err)
	}
	if code, reason := u.closed(); code != ws.StatusNormalClosure {
		t.Errorf("close %d %q, want 1000", code, reason)
	}
}
