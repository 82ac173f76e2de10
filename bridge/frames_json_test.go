package bridge

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// The oracle's side of the frame types: encoding/json writes them through
// these, and each frame's appendJSON must write the same bytes.

// MarshalJSON writes the value as encoding/json does, HTML escaping off.
func (o opt[T]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(o.v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// MarshalJSON is what appendJSON writes, as encoding/json would write it.
func (t frameTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(timeLayout))
}

// referenceJSON is j as encoding/json writes it with HTML escaping off:
// what EncodeFrame wrote before appendJSON, and must still write.
func referenceJSON(t *testing.T, j *serverJSON) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// everyKind is one frame of each kind of server event, its strings s and
// u, its numbers n, its flags on.
func everyKind(s, u string, n uint64, on bool) []*chatv1.ServerFrame {
	ts := timestamppb.New(time.Unix(int64(n%(1<<40)), int64(n%1e9)))
	pos := &chatv1.Position{Offset: n, Epoch: u}
	frames := []*chatv1.ServerFrame{
		{Event: &chatv1.ServerFrame_System{System: &chatv1.System{Message: s, ConnectionId: u, UserId: s, Inbox: pos, ExpiresAt: ts}}},
		{Event: &chatv1.ServerFrame_System{System: &chatv1.System{Message: s}}},
		{Event: &chatv1.ServerFrame_UserJoined{UserJoined: &chatv1.UserJoined{Message: s, UserId: u, Username: s}}},
		{Event: &chatv1.ServerFrame_UserLeft{UserLeft: &chatv1.UserLeft{Message: s, UserId: u, Username: s}}},
		{Event: &chatv1.ServerFrame_Message{Message: &chatv1.Message{Sender: u, UserId: u, Message: s, Room: u, Offset: n, Epoch: s}}},
		{Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: s, Room: u, UserId: u, Username: s, Offset: n, Epoch: u, Recovered: proto.Bool(on)}}},
		{Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: s, Room: u}}},
		{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Message: s, Room: u, UserId: u, Username: s, Kicked: on, Yours: on}}},
		{Event: &chatv1.ServerFrame_PrivateMessage{PrivateMessage: &chatv1.PrivateMessage{Sender: u, UserId: u, Message: s, Offset: n, Epoch: u}}},
		{Event: &chatv1.ServerFrame_PrivateSent{PrivateSent: &chatv1.PrivateSent{Message: s, TargetUser: u, Delivered: int32(n)}}},
		{Event: &chatv1.ServerFrame_AdminBroadcast{AdminBroadcast: &chatv1.AdminBroadcast{Message: s, Room: u}}},
		{Event: &chatv1.ServerFrame_Error{Error: &chatv1.Error{Message: s, Code: u}}},
		{Event: &chatv1.ServerFrame_Ack{Ack: &chatv1.Ack{Room: u, Offset: n, Epoch: s}}},
		{Event: &chatv1.ServerFrame_PrivateRecovered{PrivateRecovered: &chatv1.PrivateRecovered{Recovered: on, Offset: n, Epoch: u}}},
		{Event: &chatv1.ServerFrame_Refreshed{Refreshed: &chatv1.Refreshed{ExpiresAt: ts}}},
	}
	for _, f := range frames {
		f.Id, f.Timestamp = u, ts
	}
	return frames
}

// checkSameBytes fails unless EncodeFrame writes every frame of
// everyKind(s, u, n, on) exactly as encoding/json does.
func checkSameBytes(t *testing.T, s, u string, n uint64, on bool) {
	for _, f := range everyKind(s, u, n, on) {
		var j serverJSON
		if err := j.fill(f); err != nil {
			t.Fatal(err)
		}
		want := referenceJSON(t, &j)
		got, err := EncodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s frame:\nEncodeFrame  %q\nencoding/json %q", j.Type, got, want)
		}
	}
}

// The hand-written encoder writes every kind of frame byte for byte as
// encoding/json does, whatever the strings hold.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	oneof := (&chatv1.ServerFrame{}).ProtoReflect().Descriptor().Oneofs().ByName("event")
	covered := map[protoreflect.Name]bool{}
	for _, f := range everyKind("", "", 0, false) {
		covered[f.ProtoReflect().WhichOneof(oneof).Name()] = true
	}
	for i := range oneof.Fields().Len() {
		if name := oneof.Fields().Get(i).Name(); !covered[name] {
			t.Errorf("everyKind has no %s frame: add it", name)
		}
	}
	for _, s := range appendJSONSeeds {
		checkSameBytes(t, s, "u", 7, true)
		checkSameBytes(t, "m", s, 1<<63+5, false)
	}
}

var appendJSONSeeds = []string{
	"", "hello", `<img src=x onerror="alert(1)"> & ñ`, "tab\there\nnew\rline\b\f\x00\x01\x1f\x7f",
	`back\slash "quoted"`, "\u2028\u2029 line separators", "bad \xff\xfe utf-8 \xe2\x82", "emoji 😀 and 中文",
	"\ufffd replacement", "\xed\xa0\x80 surrogate",
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range appendJSONSeeds {
		f.Add(s, "u", uint64(3), true)
	}
	f.Fuzz(func(t *testing.T, s, u string, n uint64, on bool) {
		checkSameBytes(t, s, u, n, on)
	})
}

// Times are written as time.Format writes them, in every year a
// timestamppb.Timestamp can hold and beyond.
func TestFrameTimeMatchesFormat(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 7, 40, 0, 123456789, time.FixedZone("CET", 3600)),
		time.Date(2026, 3, 9, 4, 5, 6, 999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 6, 7, 8, 9, 10, 11e6, time.UTC),
		time.Unix(0, 0),
	} {
		want, err := json.Marshal(tm.UTC().Format(timeLayout))
		if err != nil {
			t.Fatal(err)
		}
		if got := (frameTime{tm}).appendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("frameTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
