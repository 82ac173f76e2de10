package hub

import (
	"strconv"
	"strings"
)

// What the hub counts beyond the plain fields of Metrics, read by a metrics
// collector (server/metrics) at scrape time: the hub itself imports no
// metrics library.

// cmdKinds and disconnectKinds size the counter arrays of Metrics; a kind
// or code past the end is counted in the last slot.
const (
	cmdKinds        = 16
	disconnectKinds = 32
)

// cmdNames are the command kinds' names in metrics: the frame types of
// DESIGN.md. A table, so that a new kind without a name shows in
// TestEveryCommandKindHasAName rather than as "unknown" in production.
var cmdNames = [numCommandKinds]string{
	CmdMessage:        "message",
	CmdJoinRoom:       "join_room",
	CmdLeaveRoom:      "leave_room",
	CmdPrivateMessage: "private_message",
	CmdRecoverPrivate: "recover_private",
	CmdRefresh:        "refresh",
}

// String is the name of a command kind as it appears in metrics, or
// "unknown".
func (k CommandKind) String() string {
	if int(k) < len(cmdNames) && cmdNames[k] != "" {
		return cmdNames[k]
	}
	return "unknown"
}

// String is the reason of a disconnect as it appears in logs and metrics.
// Code 0 means the client ended the session (it closed, went away or its
// reads failed).
func (c DisconnectCode) String() string {
	switch c {
	case 0:
		return "client"
	case DisconnectSlow:
		return "slow"
	case DisconnectShutdown:
		return "shutdown"
	case DisconnectWriteError:
		return "write_error"
	case DisconnectDone:
		return "done"
	case DisconnectRestart:
		return "restart"
	case DisconnectFlood:
		return CodeFlood
	case DisconnectExpired:
		return CodeTokenExpired
	case DisconnectKicked:
		return CodeDisconnected
	case DisconnectBanned:
		return CodeBanned
	}
	return "code_" + strconv.Itoa(int(c))
}

// CommandsIn calls f with the number of client frames of each kind handled
// so far, for the kinds seen at least once. Frames of kinds the hub does not
// know are counted under "unknown".
func (m *Metrics) CommandsIn(f func(kind string, n int64)) {
	counts := make(map[string]int64)
	for k := range m.commands {
		if n := m.commands[k].Load(); n > 0 {
			counts[CommandKind(k).String()] += n
		}
	}
	for kind, n := range counts {
		f(kind, n)
	}
}

// Disconnects calls f with the number of sessions ended for each reason so
// far (see DisconnectCode.String), for the reasons seen at least once.
func (m *Metrics) Disconnects(f func(reason string, n int64)) {
	for c := range m.disconnects {
		if n := m.disconnects[c].Load(); n > 0 {
			f(DisconnectCode(c).String(), n)
		}
	}
}

// Rooms reports how many rooms have at least one member on this node. It
// takes every shard's read lock in turn: call it at scrape time, not per
// event.
func (h *Hub) Rooms() int {
	n := 0
	prefix := topicRoom("")
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for topic := range sh.groups {
			if strings.HasPrefix(topic, prefix) {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n
}
