package nodetest

import (
	"io"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// ReadServerData is wsutil.ReadServerData, except that a close frame with
// any code of the IANA registry ends it with a wsutil.ClosedError. gobwas/ws
// refuses the codes RFC 6455 did not itself define, among them 1012
// "service restart", which a node sends when it shuts down and which
// browsers accept.
func ReadServerData(rw io.ReadWriter) ([]byte, ws.OpCode, error) {
	control := controlHandler(rw)
	rd := &wsutil.Reader{Source: rw, State: ws.StateClientSide, CheckUTF8: true, OnIntermediate: control}
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return nil, 0, err
		}
		if h.OpCode.IsControl() {
			if err := control(h, rd); err != nil {
				return nil, 0, err
			}
			continue
		}
		b, err := io.ReadAll(rd)
		return b, h.OpCode, err
	}
}

// controlHandler answers pings as wsutil does, and turns a close frame into
// a wsutil.ClosedError after echoing its code.
func controlHandler(rw io.ReadWriter) wsutil.FrameHandlerFunc {
	base := wsutil.ControlFrameHandler(rw, ws.StateClientSide)
	return func(h ws.Header, r io.Reader) error {
		if h.OpCode != ws.OpClose {
			return base(h, r)
		}
		p, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		code, reason := ws.ParseCloseFrameData(p)
		wsutil.WriteClientMessage(rw, ws.OpClose, ws.NewCloseFrameBody(code, ""))
		return wsutil.ClosedError{Code: code, Reason: reason}
	}
}
