// Package config reads Tertulia's configuration file (tertulia serve
// --config tertulia.yaml), YAML that says what flags cannot say well.
//
// Every top-level key but two is a flag of the command, spelled with
// dashes or underscores (http-addr or http_addr); its value is what the
// flag would be given, and a list is joined with commas (allowed-origins).
// The two others are:
//
//   - limits: a map of the limits of DESIGN.md ("messages_per_second: 20"),
//     each the flag --limit-<name with dashes>;
//   - namespaces: a map from namespace name ("" or "default" for the
//     default namespace) to its settings: private, publish, guests,
//     history_size, history_ttl, presence_limit (see Namespace).
//
// The file is strict: an unknown key, a value of the wrong type, a key given
// twice is an error naming the file, the line and the key. Precedence is
// flag, then environment, then file, then default: Apply sets only the
// flags that the command line and the environment left alone.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tertulia/tertulia/server/hub"
)

// File is a parsed configuration file.
type File struct {
	name   string
	values []setting // flag values, in file order
	ns     *hub.Namespaces
}

// setting is one flag's value from the file.
type setting struct {
	flag, value string
	line        int
}

// Load reads and parses the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses data, the contents of the file called name (used in errors).
// Flag keys are checked against a flag set in Apply; everything else here.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file sets nothing
			return f, f.namespaces(nil)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return f, f.namespaces(nil)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, f.errorf(root, "the file must be a map of keys to values")
	}
	var nsNode *yaml.Node
	err := f.eachKey(root, flagName, func(key string, k, v *yaml.Node) error {
		switch norm := flagName(key); norm {
		case "namespaces":
			nsNode = v
			return nil
		case "limits":
			return f.limits(v)
		case "config":
			return f.errorf(k, "key %q: a config file cannot name another one", key)
		default:
			return f.add(norm, k, v)
		}
	})
	if err != nil {
		return nil, err
	}
	return f, f.namespaces(nsNode)
}

// Namespaces returns the namespaces' policies the file sets; a file
// without namespaces gives every room hub.DefaultNamespacePolicy.
func (f *File) Namespaces() *hub.Namespaces { return f.ns }

// Apply sets, on fs, every flag the file gives a value to and that is not
// set already (fs.Visit: by the command line or, see the command's parse,
// the environment). A key that is no flag of fs is an error.
func (f *File) Apply(fs *flag.FlagSet) error {
	set := make(map[string]bool)
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, s := range f.values {
		if fs.Lookup(s.flag) == nil {
			if strings.HasPrefix(s.flag, "limit-") {
				return fmt.Errorf("%s:%d: unknown limit %q", f.name, s.line, strings.ReplaceAll(strings.TrimPrefix(s.flag, "limit-"), "-", "_"))
			}
			return fmt.Errorf("%s:%d: unknown key %q: no such flag of %s", f.name, s.line, s.flag, fs.Name())
		}
		if set[s.flag] {
			continue
		}
		if err := fs.Set(s.flag, s.value); err != nil {
			return fmt.Errorf("%s:%d: %s: invalid value %q: %w", f.name, s.line, s.flag, s.value, err)
		}
	}
	return nil
}

// flagName spells a key as a flag: http_addr -> http-addr.
func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// limits reads the limits: map, each key a --limit-* flag.
func (f *File) limits(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return f.errorf(v, "limits must be a map of limit names to values")
	}
	return f.eachKey(v, flagName, func(key string, k, v *yaml.Node) error {
		return f.add("limit-"+flagName(key), k, v)
	})
}

// add records the value v of the flag named name, given by key node k.
func (f *File) add(name string, k, v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return f.errorf(k, "key %q has no value", k.Value)
		}
		f.values = append(f.values, setting{flag: name, value: v.Value, line: k.Line})
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return f.errorf(it, "key %q: a list may hold only plain values", k.Value)
			}
			items = append(items, it.Value)
		}
		f.values = append(f.values, setting{flag: name, value: strings.Join(items, ","), line: k.Line})
	default:
		return f.errorf(v, "key %q: want a value or a list of values, not a map", k.Value)
	}
	return nil
}

// eachKey calls fn for every key of the map m, refusing a key given twice
// (YAML forbids it; a silent last-one-wins hides typos), in any spelling
// that norm makes the same.
func (f *File) eachKey(m *yaml.Node, norm func(string) string, fn func(key string, k, v *yaml.Node) error) error {
	seen := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return f.errorf(k, "keys must be plain names")
		}
		if line, dup := seen[norm(k.Value)]; dup {
			return f.errorf(k, "key %q given twice (first on line %d)", k.Value, line)
		}
		seen[norm(k.Value)] = k.Line
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// errorf is an error about node n of the file: "tertulia.yaml:7: ...".
func (f *File) errorf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", f.name, n.Line, fmt.Sprintf(format, args...))
}
