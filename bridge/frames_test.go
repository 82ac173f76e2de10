package bridge_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\ngot  %s\nwant %s", path, got, want)
	}
}

// Every server frame type, as DESIGN.md has it.
func TestEncodeFrameGolden(t *testing.T) {
	ts := timestamppb.New(time.Date(2026, 11, 26, 7, 40, 0, 123456789, time.FixedZone("CET", 3600)))
	exp := timestamppb.New(time.Date(2026, 11, 26, 8, 40, 0, 0, time.UTC))
	for _, tc := range []struct {
		name string
		f    *chatv1.ServerFrame
	}{
		{"system", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_System{System: &chatv1.System{Message: "Welcome alice", ConnectionId: "c0ffee", UserId: "alice",
			Inbox: &chatv1.Position{Offset: 4, Epoch: "e9"}}}}},
		{"system_empty_inbox", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_System{System: &chatv1.System{Message: "Connected to the chat", ConnectionId: "c0ffee", UserId: "guest-1"}}}},
		{"user_joined", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_UserJoined{UserJoined: &chatv1.UserJoined{Message: "alice joined the chat", UserId: "alice", Username: "alice"}}}},
		{"user_left", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_UserLeft{UserLeft: &chatv1.UserLeft{Message: "alice left the chat", UserId: "alice", Username: "alice"}}}},
		{"message_lobby", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_Message{Message: &chatv1.Message{Sender: "alice", UserId: "alice", Message: `<img src=x onerror="window.pwned=1"> & ñ`}}}},
		{"message_room", &chatv1.ServerFrame{Id: "m1", Event: &chatv1.ServerFrame_Message{Message: &chatv1.Message{Sender: "alice", UserId: "alice", Message: "hi", Room: "lounge", Offset: 12, Epoch: "e1"}}}},
		{"room_joined", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: "alice joined room lounge", Room: "lounge", UserId: "alice", Username: "alice"}}}},
		{"room_joined_own", &chatv1.ServerFrame{Id: "j1", Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: "alice joined room lounge", Room: "lounge", UserId: "alice", Username: "alice", Offset: 12, Epoch: "e1"}}}},
		{"room_joined_recovered", &chatv1.ServerFrame{Id: "j1", Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: "alice joined room lounge", Room: "lounge", UserId: "alice", Username: "alice", Offset: 12, Epoch: "e1", Recovered: proto.Bool(true)}}}},
		{"room_joined_not_recovered", &chatv1.ServerFrame{Id: "j1", Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: "alice joined room lounge", Room: "lounge", UserId: "alice", Username: "alice", Offset: 140, Epoch: "e2", Recovered: proto.Bool(false)}}}},
		{"ack_room", &chatv1.ServerFrame{Id: "m1", Event: &chatv1.ServerFrame_Ack{Ack: &chatv1.Ack{Room: "lounge", Offset: 12, Epoch: "e1"}}}},
		{"ack_private", &chatv1.ServerFrame{Id: "p1", Event: &chatv1.ServerFrame_Ack{Ack: &chatv1.Ack{Offset: 3, Epoch: "e7"}}}},
		{"ack_lobby", &chatv1.ServerFrame{Id: "l1", Event: &chatv1.ServerFrame_Ack{Ack: &chatv1.Ack{}}}},
		{"private_recovered", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_PrivateRecovered{PrivateRecovered: &chatv1.PrivateRecovered{Recovered: true, Offset: 5, Epoch: "e7"}}}},
		{"private_recovered_not", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_PrivateRecovered{PrivateRecovered: &chatv1.PrivateRecovered{Offset: 0, Epoch: ""}}}},
		{"room_left", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Message: "alice left room lounge", Room: "lounge", UserId: "alice", Username: "alice"}}}},
		{"private_message", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_PrivateMessage{PrivateMessage: &chatv1.PrivateMessage{Sender: "bob", UserId: "bob", Message: "psst", Offset: 3, Epoch: "e7"}}}},
		{"private_sent", &chatv1.ServerFrame{Id: "p1", Event: &chatv1.ServerFrame_PrivateSent{PrivateSent: &chatv1.PrivateSent{Message: "Private message sent to alice", TargetUser: "alice", Delivered: 2}}}},
		{"private_sent_nobody", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_PrivateSent{PrivateSent: &chatv1.PrivateSent{Message: "User zed is not connected", TargetUser: "zed"}}}},
		{"admin_broadcast", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_AdminBroadcast{AdminBroadcast: &chatv1.AdminBroadcast{Message: "maintenance at noon"}}}},
		{"admin_broadcast_room", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_AdminBroadcast{AdminBroadcast: &chatv1.AdminBroadcast{Message: "quiet please", Room: "lounge"}}}},
		{"system_expires", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_System{System: &chatv1.System{Message: "Welcome alice", ConnectionId: "c0ffee", UserId: "alice", ExpiresAt: exp}}}},
		{"refreshed", &chatv1.ServerFrame{Id: "r1", Event: &chatv1.ServerFrame_Refreshed{Refreshed: &chatv1.Refreshed{ExpiresAt: exp}}}},
		{"room_left_kicked", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Message: "alice left room lounge", Room: "lounge", UserId: "alice", Username: "alice", Kicked: true}}}},
		{"room_left_kicked_yours", &chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Message: "alice left room lounge", Room: "lounge", UserId: "alice", Username: "alice", Kicked: true, Yours: true}}}},
		{"error", &chatv1.ServerFrame{Id: "j1", Event: &chatv1.ServerFrame_Error{Error: &chatv1.Error{Message: "room name must be 1 to 64 characters", Code: "invalid_room"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Timestamp = ts
			b, err := bridge.EncodeFrame(tc.f)
			if err != nil {
				t.Fatalf("EncodeFrame: %v", err)
			}
			if !json.Valid(b) {
				t.Fatalf("EncodeFrame = %s, not valid JSON", b)
			}
			golden(t, "server_"+tc.name+".json", append(b, '\n'))
		})
	}
}

func TestEncodeFrameRefusesEmptyEvent(t *testing.T) {
	if b, err := bridge.EncodeFrame(&chatv1.ServerFrame{}); err == nil {
		t.Errorf("EncodeFrame(no event) = %s, want an error", b)
	}
}

// Every client frame the seed's pages and scripts send, and the bad ones.
// The golden file holds the chat.v1 frame (protojson) or the error.
func TestDecodeFrameGolden(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"seed_message", `{"message": "Mensaje de prueba automatizado"}`},
		{"message", `{"type": "message", "message": "hi", "id": "m1"}`},
		{"room_message", `{"type": "message", "message": "hi", "room": "lounge"}`},
		{"join_room", `{"type": "join_room", "room": "lounge", "id": "j1"}`},
		{"join_room_since", `{"type": "join_room", "room": "lounge", "since": {"offset": 12, "epoch": "e1"}}`},
		{"join_room_since_nothing", `{"type": "join_room", "room": "lounge", "since": {"offset": 0, "epoch": ""}}`},
		{"join_room_history", `{"type": "join_room", "room": "lounge", "history": 20}`},
		{"recover_private", `{"type": "recover_private", "since": {"offset": 3, "epoch": "e7"}}`},
		{"recover_private_no_since", `{"type": "recover_private", "id": "r1"}`},
		{"wrong_type_since", `{"type": "join_room", "room": "lounge", "since": {"offset": "12"}}`},
		{"wrong_type_since_object", `{"type": "join_room", "room": "lounge", "since": "12"}`},
		{"leave_room", `{"type": "leave_room", "room": "lounge"}`},
		{"private_message", `{"type": "private_message", "target_user": "bob", "message": "psst"}`},
		{"auth", `{"type": "auth", "token": "eyJ.x.y"}`},
		{"refresh", `{"type": "refresh", "token": "eyJ.x.y", "id": "r1"}`},
		{"unknown_fields_ignored", `{"type": "message", "message": "hi", "color": "red"}`},
		{"null_type_is_message", `{"type": null, "message": "hi"}`},
		{"invalid_json", `{"message": `},
		{"not_an_object", `"hello"`},
		{"wrong_type_room", `{"type": "join_room", "room": 5, "id": "j2"}`},
		{"wrong_type_type", `{"type": 1}`},
		{"unknown_type", `{"type": "dance", "id": "d1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := bridge.DecodeFrame([]byte(tc.in))
			var got []byte
			var fe *bridge.FrameError
			switch {
			case errors.As(err, &fe):
				got, _ = json.Marshal(map[string]string{"error_code": fe.Code, "error_message": fe.Message, "id": fe.ID})
			case err != nil:
				t.Fatalf("DecodeFrame: %v, want a *FrameError", err)
			case m.Frame == nil:
				got, _ = json.Marshal(map[string]string{"auth_token": m.Token})
			default:
				got, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.Frame)
				if err != nil {
					t.Fatal(err)
				}
				// protojson varies its spacing on purpose; compact it.
				var buf bytes.Buffer
				json.Compact(&buf, got)
				got = buf.Bytes()
			}
			golden(t, "client_"+tc.name+".json", append(append([]byte(tc.in), "\n=> "...), append(got, '\n')...))
		})
	}
}
