package bridge

import "context"

// Upstream runs the chat session of one browser connection: InProcess
// through the Chat service's session contract, Remote over a real
// chat.v1 Connect stream.
type Upstream interface {
	// Run runs a session for a browser presenting token ("" for a guest,
	// where guests are allowed) until either side ends it. It reads client
	// frames with c.Recv or c.Serve and sends server frames with
	// c.WriteFrames. Before it returns it has closed c with the code that
	// says how the session ended (1008 for a token refused before any chat
	// traffic); its error says the same for the logs.
	Run(ctx context.Context, token string, c *Conn) error
}
