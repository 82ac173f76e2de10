package bridge

import (
	"net"
	"testing"
)

// countingConn counts the reads made on it.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

// A head that arrives in one piece is read with one read: the listener
// reads it whole into the buffer the handshake goes on with, not its first
// bytes and then the rest.
func TestUpgradeHeadIsReadInOneRead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	sent := "GET /api/v1/ws?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	go client.Write([]byte(sent))
	c := &countingConn{Conn: server}
	buf := make([]byte, headChunk)
	n, err := readPrefix(c, buf)
	if err != nil || !isWSRequest(buf[:n]) {
		t.Fatalf("readPrefix = %q, %v; want a WebSocket request", buf[:n], err)
	}
	head, rest, err := readHead(c, buf[:n], 8<<10, 64)
	if err != nil || string(head) != sent || len(rest) != 0 {
		t.Fatalf("readHead = %q, %q, %v; want the head sent", head, rest, err)
	}
	if c.reads != 1 {
		t.Errorf("the head took %d reads, want 1", c.reads)
	}
}
