// Package web holds Tertulia's browser pages, embedded so that the server
// serves them with no build step: index.html (the seed's simple chat, as a
// guest) and rooms.html (login, rooms, private messages, who is online),
// also under the seed's names websocket_test.html and websocket_rooms.html,
// with their modules chat.js (the connection), recovery.js (what a
// reconnect picks up) and roomjoins.js (where a room's joins stand on the
// connection, for recovery.js).
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// seedName maps the seed's page names onto the pages that replace them, so
// existing links keep working.
func seedName(name string) string {
	switch name {
	case "websocket_test.html":
		return "index.html"
	case "websocket_rooms.html":
		return "rooms.html"
	}
	return name
}

// FS returns the pages, rooted at the static directory, with the seed's
// names as aliases. It is read-only and safe for concurrent use.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded: it cannot be missing
	}
	return aliasFS{sub}
}

// aliasFS opens a seed page name as the page that replaces it.
type aliasFS struct{ fs.FS }

func (a aliasFS) Open(name string) (fs.File, error) {
	return a.FS.Open(seedName(name))
}
