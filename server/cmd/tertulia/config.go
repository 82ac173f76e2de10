package main

import (
	"flag"

	"github.com/tertulia/tertulia/server/config"
	"github.com/tertulia/tertulia/server/hub"
)

// configFlag defines --config (TERTULIA_CONFIG) on fs and returns what,
// once fs is parsed (command line, then environment), reads the file it
// names into the flags still unset and returns the file's namespaces.
// Precedence is therefore flag, environment, file, default. Without
// --config every room has hub.DefaultNamespacePolicy.
func configFlag(fs *flag.FlagSet) func() (*hub.Namespaces, error) {
	path := fs.String("config", "", "YAML configuration file: any flag, limits: and namespaces: (see README)")
	return func() (*hub.Namespaces, error) {
		if *path == "" {
			return nil, nil
		}
		f, err := config.Load(*path)
		if err != nil {
			return nil, err
		}
		if err := f.Apply(fs); err != nil {
			return nil, err
		}
		return f.Namespaces(), nil
	}
}
