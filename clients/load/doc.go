// Package load is Tertulia's load tool: it opens many real connections to a
// running server, over the WebSocket bridge (JSON frames) or over gRPC, drives
// one scenario, and measures what a user would see: deliveries per second,
// latency from the publisher's send to the subscriber's read, messages refused and lost,
// connections dropped, and the CPU and memory the server and the tool used.
//
// Scenarios:
//
//   - fanout: N subscribers in one room, one publisher at R messages/s for D.
//   - rooms:  N connections spread over M rooms, every member publishing.
//   - idle:   N connections, each joined to a room, held for D; connect rate
//     and server RSS per connection.
//   - churn:  a fanout while other connections keep opening, joining and closing.
//   - reconnect: N subscribers in one room, all closed at once and all
//     reconnected and re-joined at once, as after a server restart (the time
//     until the last is back), then a fanout to show none is missing. With
//     Config.Restart the server really restarts (`tertulia bench --restart`
//     kills it with SIGKILL and starts it again), and each client reconnects
//     when it sees its connection end.
//
// Every connection is a distinct user with a token of its own and every
// subscriber joins the room, as in a deployment; Config.Users and the lobby
// (Config.Room "-") give the lighter set-up of sharing users, to compare.
//
// Over WebSocket the tool has two clients: its own (Client "own"), which
// sets each connection up in the dialing goroutine and classifies server
// frames by scanning their bytes, so that one core reads a million a second
// and the tool costs less per connection than the server it loads; and
// github.com/coder/websocket (Client "coder"), read as a lean production
// client would (one reused buffer, room messages found by a byte scan, the
// other events decoded with encoding/json). The coder client offers the
// tertulia.v1 subprotocol, with which the server may put several events in
// one frame, one a line; the own client offers it with OfferProtocol. The
// tool's CPU time per delivered message, from getrusage over the measured
// phase, is what the server's frames cost that client; per connection set
// up, what a connection costs it. Tokens are signed before anything is
// timed.
//
// To say which figures this machine bounds, the same scenarios measure
// Centrifugo v6 (Protocol "centrifugo", centrifugo.go): its bidirectional
// JSON protocol over coder/websocket, the room a channel, the user's token
// signed as for Tertulia; centrifugo.sh runs issue 10's workloads against
// it. Centrifugo is an instrument, not a dependency.
//
// A connection counts as set up once its welcome and its own room_joined
// have been read. A message the server refuses with an unavailable error
// (its broker is away) is counted as refused, not lost. Every message
// carries its publisher's id and sequence number, and each subscriber
// counts its own (seqTally): lost is, summed over subscribers, what one
// should have received (sent to its room, not refused) and did not; extra
// is the copies of messages it had already received. One subscriber's
// duplicate cannot hide another's loss. The count relies on the server
// delivering a room's messages to each connection in order; a little
// reordering is tolerated.
//
// The rate reported is the publishing rate achieved, beside the target;
// Run warns (Config.Warnings) when it falls below 95% of the target.
// Deliveries per second are over the window they were counted in: from
// the first publish to the last delivery; what never came is counted lost.
//
// Every loop is bounded by a count and by time, and only loopback targets
// are accepted unless Config.AllowRemote is set. Run is the entry point;
// `tertulia bench` is its command line.
//
// Latency is measured on one clock: the publisher writes its send time
// (with its id and sequence number) into the 64-byte payload and the
// subscriber, in the same process, subtracts it from the time it read the
// frame.
package load
