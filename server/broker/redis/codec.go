package redis

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// wireEvent is a hub.Event between nodes. The Event is flat and small, so
// JSON with one-letter names is compact enough, and readable in redis-cli
// MONITOR; each node decodes it once, then the hub encodes it once per wire
// format for its sessions.
type wireEvent struct {
	Kind         hub.Kind `json:"k"`
	Time         int64    `json:"t"` // Unix nanoseconds
	ID           string   `json:"i,omitempty"`
	Message      string   `json:"m,omitempty"`
	Room         string   `json:"r,omitempty"`
	Sender       string   `json:"s,omitempty"`
	UserID       string   `json:"u,omitempty"`
	ConnectionID string   `json:"c,omitempty"`
	TargetUser   string   `json:"g,omitempty"`
	Delivered    int      `json:"d,omitempty"`
	Code         string   `json:"e,omitempty"`
	ReplyTo      string   `json:"y,omitempty"`
	// Offset and Epoch come first in a logged event: the append script
	// writes them in front of the rest (see log.go).
	Offset    uint64       `json:"f,omitempty"`
	Epoch     string       `json:"p,omitempty"`
	Recovered hub.Recovery `json:"v,omitempty"`
	Kicked    bool         `json:"x,omitempty"`
	// Seq is the event's number at the broker that published it, and
	// Claim that broker's token in its claim of the node id (claim.go):
	// the publisher knows its own copy when it comes back by the two, not
	// by the node id, which a broker started with the same id (while this
	// one was cut off) shares. An event without them is nobody's own. (An
	// earlier version also sent the node id, as "o"; nothing reads it.)
	Seq   uint64 `json:"n,omitempty"`
	Claim string `json:"w,omitempty"`
}

// encodeEvent encodes ev; seq, if not 0, is its number at the publishing
// broker, and claim that broker's token.
func encodeEvent(ev *hub.Event, claim string, seq uint64) ([]byte, error) {
	if seq == 0 {
		claim = "" // nobody waits for it: the bytes are saved
	}
	b, err := json.Marshal(wireEvent{Seq: seq, Claim: claim,
		Kind: ev.Kind, Time: ev.Time.UnixNano(), ID: ev.ID, Message: ev.Message, Room: ev.Room,
		Sender: ev.Sender, UserID: ev.UserID, ConnectionID: ev.ConnectionID,
		TargetUser: ev.TargetUser, Delivered: ev.Delivered, Code: ev.Code, ReplyTo: ev.ReplyTo,
		Offset: ev.Offset, Epoch: ev.Epoch, Recovered: ev.Recovered,
		Kicked: ev.Kicked,
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev.Kind, err)
	}
	return b, nil
}

func decodeEvent(payload string) (*hub.Event, *wireEvent, error) {
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return nil, nil, fmt.Errorf("decode event: %w", err)
	}
	if !w.Kind.Valid() {
		return nil, nil, fmt.Errorf("decode event: unknown kind %d", w.Kind)
	}
	return &hub.Event{
		Kind: w.Kind, Time: time.Unix(0, w.Time).UTC(), ID: w.ID, Message: w.Message, Room: w.Room,
		Sender: w.Sender, UserID: w.UserID, ConnectionID: w.ConnectionID,
		TargetUser: w.TargetUser, Delivered: w.Delivered, Code: w.Code, ReplyTo: w.ReplyTo,
		Offset: w.Offset, Epoch: w.Epoch, Recovered: w.Recovered,
		Kicked: w.Kicked,
	}, &w, nil
}
