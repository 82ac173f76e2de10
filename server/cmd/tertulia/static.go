package main

import (
	"io/fs"

	web "github.com/tertulia/tertulia/clients/web"
)

// staticFS is the embedded web pages (clients/web), served at /static/.
func staticFS() fs.FS { return web.FS() }
