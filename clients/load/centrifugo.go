package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// centrifugoDialer opens connections to a Centrifugo v6 server, speaking
// its bidirectional JSON protocol over WebSocket with
// github.com/coder/websocket, so that the tool's scenarios measure
// Centrifugo on this machine as they measure Tertulia (Config.Protocol
// "centrifugo"). It is an instrument for comparison, not a client of the
// project: nothing of Centrifugo is imported.
//
// The mapping: the connect command (with the user's token, signed as for
// Tertulia: HS256, sub = user) is the welcome; the subscribe command to
// the channel named as the room is the join; a message is a publish
// command whose data is the tool's payload as a JSON string, which comes
// back to every subscriber as a publication. Connect and subscribe go in
// one frame, right after the handshake, as the coder client writes its join
// without waiting for the welcome. The server may put several replies in
// one frame, one a line. The connection is read as the coder client reads
// the bridge: one reused buffer, a publication's data found by a byte scan,
// every other reply decoded with encoding/json; server pings (an empty
// reply) are answered with an empty command.
type centrifugoDialer struct {
	coderDialer // its address, tokens and HTTP client
}

var _ dialer = (*centrifugoDialer)(nil)

// The command ids of a connection's set-up; publishes count up after them.
const (
	cfConnectID   = 1
	cfSubscribeID = 2
)

func newCentrifugoDialer(httpAddr string, tokens func(string) (string, error)) *centrifugoDialer {
	return &centrifugoDialer{*newCoderDialer(httpAddr, tokens)}
}

func (d *centrifugoDialer) name() string { return "centrifugo (coder/websocket)" }

func (d *centrifugoDialer) dial(ctx context.Context, user, room, joinID string, m *member) (conn, error) {
	tok, err := d.tokens(user)
	if err != nil {
		return nil, err
	}
	u := &url.URL{Scheme: "ws", Host: d.httpAddr, Path: "/connection/websocket"}
	cc := &centrifugoConn{nextID: cfSubscribeID}
	if err := d.open(ctx, u, nil, &cc.coderConn, func() { cc.read(m, joinID) }, cfSetUpFrame(nil, tok, room), "connect", m); err != nil {
		return nil, err
	}
	return cc, nil
}

// cfSetUpFrame appends the frame that connects with token and, unless room
// is "", subscribes to the channel room: two commands, one a line.
func cfSetUpFrame(b []byte, token, room string) []byte {
	b = append(b, `{"id":`+strconv.Itoa(cfConnectID)+`,"connect":{"token":`...)
	b = appendJSONString(b, token)
	b = append(b, `}}`...)
	if room != "" {
		b = append(b, "\n{\"id\":"+strconv.Itoa(cfSubscribeID)+`,"subscribe":{"channel":`...)
		b = appendJSONString(b, room)
		b = append(b, `}}`...)
	}
	return b
}

// cfPublishFrame appends the publish command id carrying payload to the
// channel room, as a JSON string. Payloads are the tool's own (digits and
// dots), so they need no escaping.
func cfPublishFrame(b []byte, id uint32, room string, payload []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"publish":{"channel":`...)
	b = appendJSONString(b, room)
	b = append(b, `,"data":"`...)
	b = append(b, payload...)
	return append(b, `"}}`...)
}

// centrifugoConn is a coderConn (its frame reading, writing and closing)
// that reads Centrifugo's replies and numbers its commands.
type centrifugoConn struct {
	coderConn
	nextID uint32 // the last command id; protected by wmu
}

// cfReply is one server reply other than a publication read by its bytes,
// decoded as a client that shows it would.
type cfReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Push *struct {
		Channel string `json:"channel"`
		Pub     *struct {
			Data json.RawMessage `json:"data"`
		} `json:"pub"`
	} `json:"push"`
}

var (
	cfPushPrefix = []byte(`{"push":{"channel":`)
	cfPubData    = []byte(`"pub":{"data":"`)
	cfPing       = []byte(`{}`)
)

func (c *centrifugoConn) read(m *member, joinID string) {
	defer close(c.done)
	buf := make([]byte, 0, 4<<10) // the connection's one read buffer
	for {
		var err error
		if buf, err = c.readFrame(buf[:0]); err != nil {
			c.end(m, err)
			return
		}
		if err := cfFrame(m, joinID, buf, time.Now(), c.pong); err != nil {
			c.end(m, err)
			return
		}
	}
}

// cfFrame hands the replies of one frame, read at now, to m: publications
// read by their bytes, pings answered with pong, the rest decoded. An
// error ends the connection.
func cfFrame(m *member, joinID string, frame []byte, now time.Time, pong func() error) error {
	for ev, rest := nextEvent(frame); ev != nil; ev, rest = nextEvent(rest) {
		// The hot path: a publication, its data read by its bytes.
		if p, ok := cfPublication(ev); ok {
			onMessage(m, p, now)
			continue
		}
		if bytes.Equal(ev, cfPing) {
			if err := pong(); err != nil {
				return fmt.Errorf("pong: %w", err)
			}
			continue
		}
		var r cfReply
		if err := json.Unmarshal(ev, &r); err != nil {
			return fmt.Errorf("undecodable reply %.64q: %w", ev, err)
		}
		cfOnReply(m, joinID, &r, now)
	}
	return nil
}

// cfPublication is the data of a publication pushed in a channel, if ev is
// one whose data is a JSON string, found by a byte scan.
func cfPublication(ev []byte) ([]byte, bool) {
	if !bytes.HasPrefix(ev, cfPushPrefix) {
		return nil, false
	}
	i := bytes.Index(ev, cfPubData)
	if i < 0 {
		return nil, false
	}
	p := ev[i+len(cfPubData):]
	end := bytes.IndexByte(p, '"')
	if end < 0 {
		return nil, false
	}
	return p[:end], true
}

// cfNotAvailable is Centrifugo's error 108, "not available": a command it
// cannot carry out for now (its broker is away, say), counted as refused as
// Tertulia's unavailable is, not as lost.
const cfNotAvailable = 108

// cfOnReply hands a decoded reply to m: the connect reply is the welcome, the
// subscribe reply the join (joinID's), an error to either fails the
// set-up; a publication in another layout is still a message.
func cfOnReply(m *member, joinID string, r *cfReply, now time.Time) {
	switch {
	case r.ID == cfConnectID && r.Error != nil:
		m.failSetup(fmt.Errorf("connect refused: %d: %s", r.Error.Code, r.Error.Message))
	case r.ID == cfConnectID:
		m.onWelcome()
	case r.ID == cfSubscribeID && r.Error != nil:
		onError(m, strconv.Itoa(int(r.Error.Code)), joinID, r.Error.Message)
	case r.ID == cfSubscribeID:
		onJoined(m, joinID)
	case r.Error != nil && r.Error.Code == cfNotAvailable:
		onError(m, codeUnavailable, "", r.Error.Message) // refused, as Tertulia's unavailable
	case r.Error != nil:
		onError(m, strconv.Itoa(int(r.Error.Code)), "", r.Error.Message)
	case r.Push != nil && r.Push.Pub != nil:
		var s string
		if json.Unmarshal(r.Push.Pub.Data, &s) == nil {
			onMessage(m, s, now)
		}
	}
}

// pong answers a server ping with an empty command.
func (c *centrifugoConn) pong() error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	return c.write(ctx, cfPing)
}

func (c *centrifugoConn) send(room string, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nextID++
	c.wbuf = cfPublishFrame(c.wbuf[:0], c.nextID, room, payload)
	return c.write(ctx, c.wbuf)
}
