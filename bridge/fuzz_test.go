package bridge_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/grpcapi"
)

// FuzzDecodeFrame feeds the JSON frame decoder anything a browser could
// send: it never panics, every refusal is a *FrameError with a code, and
// every frame it accepts maps onto chat.v1 and into a hub command with its
// id intact. Seeds: testdata/fuzz/FuzzDecodeFrame.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","message":"hi","id":"m1"}`, `{"message":"x","room":"r"}`, `{"type":"join_room","room":"general"}`,
		`{"type":"private_message","target_user":"bob","message":"hi"}`, `{"type":"auth","token":"t"}`, `[1]`, `{"type":7}`, `nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bridge.DecodeFrame(data)
		if err != nil {
			var fe *bridge.FrameError
			if !errors.As(err, &fe) || fe.Code == "" || fe.Message == "" {
				t.Fatalf("DecodeFrame(%q): error %v, want a *FrameError with a code and a message", data, err)
			}
			return
		}
		if m.Frame == nil {
			return // an auth frame
		}
		if _, err := proto.Marshal(m.Frame); err != nil {
			t.Fatalf("DecodeFrame(%q) = %v, which does not marshal: %v", data, m.Frame, err)
		}
		if cmd := grpcapi.CommandFromFrame(m.Frame); cmd.ID != m.Frame.GetId() || cmd.Kind == 0 {
			t.Fatalf("DecodeFrame(%q) = %v maps to %+v, want its kind and id", data, m.Frame, cmd)
		}
	})
}
