package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tertulia/tertulia/server/hub"
)

// Namespace is one entry of namespaces:, as written in the file. A key left
// out takes the default namespace's value; the default namespace's take
// hub.DefaultNamespacePolicy, and the node's flags for history and presence.
//
//	namespaces:
//	  default: {guests: true}
//	  team: {private: true}            # rooms team:*, for tokens whose rooms claim grants them
//	  news: {publish: admins, history_size: 1000, history_ttl: 168h}
//	  lobby-big: {presence_limit: 50}
type Namespace struct {
	Private       *bool          // private: true|false
	Publish       *hub.Publish   // publish: members|admins
	Guests        *bool          // guests: true|false (may anonymous guests join)
	HistorySize   *int           // history_size: messages kept per room; 0 keeps none
	HistoryTTL    *time.Duration // history_ttl: how long a message is kept ("24h")
	PresenceLimit *int           // presence_limit: most members for joins and leaves to be announced
}

// namespaceKeys are the keys of a namespace's settings, in the file's spelling.
var namespaceKeys = []string{"private", "publish", "guests", "history_size", "history_ttl", "presence_limit"}

// namespaces reads the namespaces: map (nil when the file has none) into f.ns.
func (f *File) namespaces(m *yaml.Node) error {
	byName := make(map[string]Namespace)
	if m != nil {
		if m.Kind != yaml.MappingNode {
			return f.errorf(m, "namespaces must be a map of namespace names to their settings")
		}
		err := f.eachKey(m, defaultName, func(name string, k, v *yaml.Node) error {
			if strings.Contains(name, ":") {
				return f.errorf(k, "namespace %q: a namespace name has no ':' (the rooms of namespace team are team:...)", name)
			}
			ns, err := f.namespace(name, v)
			byName[defaultName(name)] = ns
			return err
		})
		if err != nil {
			return err
		}
	}
	def := byName[hub.DefaultNamespace].over(hub.DefaultNamespacePolicy())
	policies := map[string]hub.NamespacePolicy{hub.DefaultNamespace: def}
	for name, ns := range byName {
		if name != hub.DefaultNamespace {
			policies[name] = ns.over(def)
		}
	}
	ns, err := hub.NewNamespaces(policies)
	if err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	f.ns = ns
	return nil
}

// namespace reads one namespace's settings, v, a map (or nothing at all:
// "team:" alone is a namespace with the default's settings).
func (f *File) namespace(name string, v *yaml.Node) (Namespace, error) {
	var ns Namespace
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return ns, nil
	}
	if v.Kind != yaml.MappingNode {
		return ns, f.errorf(v, "namespace %q: want a map of settings (%s)", name, strings.Join(namespaceKeys, ", "))
	}
	err := f.eachKey(v, underscores, func(key string, k, v *yaml.Node) error {
		bad := func(want string) error {
			return f.errorf(v, "namespace %q: %s: want %s, not %q", name, key, want, v.Value)
		}
		switch underscores(key) {
		case "private":
			ns.Private = new(bool)
			if v.Decode(ns.Private) != nil {
				return bad("true or false")
			}
		case "guests":
			ns.Guests = new(bool)
			if v.Decode(ns.Guests) != nil {
				return bad("true or false")
			}
		case "publish":
			p := hub.Publish(v.Value)
			if v.Kind != yaml.ScalarNode || (p != hub.PublishMembers && p != hub.PublishAdmins) {
				return bad(fmt.Sprintf("%s or %s", hub.PublishMembers, hub.PublishAdmins))
			}
			ns.Publish = &p
		case "history_size":
			ns.HistorySize = new(int)
			if v.Decode(ns.HistorySize) != nil || *ns.HistorySize < 0 {
				return bad("a number of messages, 0 for none")
			}
		case "history_ttl":
			d, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || d <= 0 {
				return bad("a positive duration such as 24h")
			}
			ns.HistoryTTL = &d
		case "presence_limit":
			ns.PresenceLimit = new(int)
			if v.Decode(ns.PresenceLimit) != nil || *ns.PresenceLimit <= 0 {
				return bad("a positive number of members")
			}
		default:
			return f.errorf(k, "namespace %q: unknown key %q (want %s)", name, key, strings.Join(namespaceKeys, ", "))
		}
		return nil
	})
	return ns, err
}

// defaultName spells the default namespace's two names as one, "".
func defaultName(name string) string {
	if name == "default" {
		return hub.DefaultNamespace
	}
	return name
}

// underscores spells a setting as the file's documentation does: history-ttl -> history_ttl.
func underscores(key string) string { return strings.ReplaceAll(key, "-", "_") }

// over returns base with the settings ns gives replacing base's.
func (ns Namespace) over(base hub.NamespacePolicy) hub.NamespacePolicy {
	p := base
	if ns.Private != nil {
		p.Private = *ns.Private
	}
	if ns.Publish != nil {
		p.Publish = *ns.Publish
	}
	if ns.Guests != nil {
		p.Guests = *ns.Guests
	}
	if ns.HistorySize != nil {
		p.HistorySize = *ns.HistorySize
		if p.HistorySize == 0 {
			p.HistorySize = -1 // none; the policy's 0 is the node's default
		}
	}
	if ns.HistoryTTL != nil {
		p.HistoryTTL = *ns.HistoryTTL
	}
	if ns.PresenceLimit != nil {
		p.PresenceLimit = *ns.PresenceLimit
	}
	return p
}
