package bridge

import "github.com/gobwas/ws"

// StatusServiceRestart is the close code of a server going away for a
// moment (the IANA registry of RFC 6455: 1012 "Service Restart"): the
// client should reconnect after a random wait, to whichever node answers.
// A node sends it when it shuts down (hub.DisconnectRestart); gobwas/ws has
// no name for it.
const StatusServiceRestart ws.StatusCode = 1012

// ReasonServiceRestart is the reason that goes with StatusServiceRestart.
const ReasonServiceRestart = "service restart"
