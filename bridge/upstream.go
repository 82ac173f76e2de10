package bridge

import "context"

// Upstream runs the chat session of one browser connection: InProcess
// through the Chat service's session contract, Remote over a real
// chat.v1 Connect stream.
type Upstream interface {
	// Start starts a session for a browser presenting token ("" for a
	// guest, where guests are allowed), and calls done once, with why, when
	// either side has ended it. It reads client frames with c.Serve
	// and sends server frames with c.WriteFrames. Before done is
	// called, c has been closed with the code that says how the session
	// ended (1008 for a token refused before any chat traffic); done's
	// error says the same for the logs.
	//
	// Start need not return before the session ends, but a session that
	// returns and leaves its waiting to c.Serve costs an idle connection
	// one goroutine with the smallest stack (see Conn.Serve).
	Start(ctx context.Context, token string, c *Conn, done func(error))
}
