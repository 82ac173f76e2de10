package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/i18n"
)

// refusals keep a remote session's answers in the order of the browser's
// frames. The bridge refuses a frame it cannot map (bad JSON, an unknown
// type) itself, at once, while the answer to the frame before it (a join,
// say) is still on its way back from the core. So the refusal waits: the
// bridge sends the core an empty frame with an id of its own, a barrier,
// which the core answers (unknown_type) after everything sent before it;
// the barrier's answer is swapped for the refusal on its way to the
// browser. The barrier id is random per connection and never reaches the
// browser, which therefore cannot forge one. The barrier's answer is in the
// session's language (the core knows it, from the token's locale claim or
// Accept-Language), so the refusal is written in the same one.
type refusals struct {
	barrier string

	mu      sync.Mutex // protects pending
	pending []*FrameError
}

func newRefusals() *refusals {
	var b [12]byte
	rand.Read(b[:])
	return &refusals{barrier: "bridge-barrier-" + hex.EncodeToString(b[:])}
}

// hold queues fe and returns the barrier frame to send to the core.
func (r *refusals) hold(fe *FrameError) *chatv1.ClientFrame {
	r.mu.Lock()
	r.pending = append(r.pending, fe)
	r.mu.Unlock()
	return &chatv1.ClientFrame{Id: r.barrier}
}

// swap returns the refusal to send in place of f, the core's answer to a
// barrier, or nil if f is anything else.
func (r *refusals) swap(f *chatv1.ServerFrame, now time.Time) *chatv1.ServerFrame {
	if f.GetId() != r.barrier || f.GetError() == nil {
		return nil
	}
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	fe := r.pending[0]
	r.pending[0] = nil
	r.pending = r.pending[1:]
	r.mu.Unlock()
	msg := fe.Message
	if l, ok := texts.Which(f.GetError().GetMessage(), barrierText); ok {
		msg = fe.Refusal().MessageIn(texts, l)
	}
	return ErrorFrame(now, echoedID(fe.ID), fe.Code, msg)
}

// forwarded is what the browser gets for f, a frame of the core: the
// refusal f answers, nil for the answer to a barrier with none held, else f.
func (r *refusals) forwarded(f *chatv1.ServerFrame, now time.Time) *chatv1.ServerFrame {
	if s := r.swap(f, now); s != nil {
		return s
	}
	if f.GetId() == r.barrier {
		return nil
	}
	return f
}

// barrierText is the English text of the core's answer to a barrier: an
// empty frame.
const barrierText = "unknown frame type"

// texts are the server's texts, which a remote bridge writes its refusals
// with; every node has the same, compiled in.
var texts = i18n.English()
