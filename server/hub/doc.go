// Package hub is the heart of Tertulia: sessions, rooms, presence and the
// routing of events between them. It knows no transport: a gRPC stream or a
// WebSocket reaches it through the small Transport interface, and other nodes
// reach it through a Broker. It imports no gRPC, HTTP, WebSocket or Redis code.
//
// Files by role: hub.go (the Hub, opening sessions, shutdown), session.go
// (a Session's lifecycle), command.go (what a client may ask: Session.Handle),
// outbox.go (a session's bounded queue and its writer), sweeper.go (the
// hub-wide passes that end idle writers and flush held announcements),
// group.go (local subscribers by topic, and the fan-out), event.go (events
// and the one table of their kinds), errors.go (the refusal codes, named from the wire's catalog, chatcodes),
// expiry.go (a session ends with its token, unless refreshed),
// moderation.go (disconnect, kick and bans, carried to every node through
// the broker), transport.go and broker.go (the interfaces the hub asks of
// others).
//
// The hub never waits on a client. Each session has a bounded outbound queue
// drained by at most one writer goroutine, started when frames are queued;
// a session that keeps receiving keeps its writer parked between bursts (a
// wake-up costs less than a goroutine start), and a writer idle for
// writerLinger ends, so a quiet session holds none. A session whose queue
// overflows is disconnected as slow and counted. Presence announcements of
// other members wake no writer: they go out, in their place in the queue,
// with the next frame that does, or within announceDelay (20 ms), so that a
// storm of joins costs each member one write per 20 ms, not one per join.
// A session's own answers and chat messages are never delayed.
// An event is encoded once per wire format and the bytes shared by every
// recipient that speaks it.
//
// Room messages and private messages are logged by the broker (see Log):
// each gets an offset in its room's or user's log, a frame with an id is
// acknowledged once the broker holds it and de-duplicated cluster-wide, and
// a session joining a room (or recovering its inbox) is replayed what it
// missed, then the live stream, with no gap and no duplicate (history.go,
// catchup.go).
package hub
