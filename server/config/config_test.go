package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/config"
	"github.com/tertulia/tertulia/server/hub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flags is a flag set shaped like tertulia serve's, for Apply.
func flags() (*flag.FlagSet, map[string]any) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, map[string]any{
		"http-addr":                 fs.String("http-addr", ":8000", ""),
		"dev":                       fs.Bool("dev", false, ""),
		"allowed-origins":           fs.String("allowed-origins", "", ""),
		"shutdown-timeout":          fs.Duration("shutdown-timeout", 10*time.Second, ""),
		"limit-messages-per-second": fs.Float64("limit-messages-per-second", 20, ""),
	}
}

const example = `# a full file
http_addr: ":8100"
dev: true
allowed-origins: [https://a.example, https://b.example]
shutdown_timeout: 3s
limits:
  messages_per_second: 5
namespaces:
  default:
    guests: false
    history_size: 10
  team: {private: true}
  news:
    publish: admins
    guests: true
    history_size: 0
    history_ttl: 168h
    presence_limit: 50
  quiet:
`

func TestApplySetsEveryFlagTheFileGives(t *testing.T) {
	f, err := config.Parse("tertulia.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	fs, v := flags()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(fs); err != nil {
		t.Fatal(err)
	}
	if got := *v["http-addr"].(*string); got != ":8100" {
		t.Errorf("http-addr = %q, want :8100", got)
	}
	if !*v["dev"].(*bool) {
		t.Error("dev = false, want true")
	}
	if got := *v["allowed-origins"].(*string); got != "https://a.example,https://b.example" {
		t.Errorf("allowed-origins = %q, want the list joined with commas", got)
	}
	if got := *v["shutdown-timeout"].(*time.Duration); got != 3*time.Second {
		t.Errorf("shutdown-timeout = %v, want 3s", got)
	}
	if got := *v["limit-messages-per-second"].(*float64); got != 5 {
		t.Errorf("limit-messages-per-second = %v, want 5 (limits: messages_per_second)", got)
	}
}

func TestFlagsAlreadySetWinOverTheFile(t *testing.T) {
	f, err := config.Parse("tertulia.yaml", []byte("http_addr: \":8100\"\ndev: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, v := flags()
	if err := fs.Parse([]string{"--http-addr", ":9999"}); err != nil { // the command line, or the environment
		t.Fatal(err)
	}
	if err := f.Apply(fs); err != nil {
		t.Fatal(err)
	}
	if got := *v["http-addr"].(*string); got != ":9999" {
		t.Errorf("http-addr = %q, want the flag's :9999 over the file's :8100", got)
	}
	if !*v["dev"].(*bool) {
		t.Error("dev = false, want the file's true where no flag was given")
	}
}

func TestNamespacesInheritTheDefaultNamespace(t *testing.T) {
	f, err := config.Parse("tertulia.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	ns := f.Namespaces()
	for _, tc := range []struct {
		room string
		want hub.NamespacePolicy
	}{
		{"general", hub.NamespacePolicy{Publish: hub.PublishMembers, Guests: false, HistorySize: 10}},
		{"", hub.NamespacePolicy{Publish: hub.PublishMembers, Guests: false, HistorySize: 10}}, // the lobby
		{"team:eng", hub.NamespacePolicy{Private: true, Publish: hub.PublishMembers, Guests: false, HistorySize: 10}},
		{"news:daily", hub.NamespacePolicy{Publish: hub.PublishAdmins, Guests: true, HistorySize: -1, HistoryTTL: 168 * time.Hour, PresenceLimit: 50}},
		{"quiet:x", hub.NamespacePolicy{Publish: hub.PublishMembers, Guests: false, HistorySize: 10}},
		{"unlisted:x", hub.NamespacePolicy{Publish: hub.PublishMembers, Guests: false, HistorySize: 10}},
	} {
		if got := ns.Policy(tc.room); got != tc.want {
			t.Errorf("Policy(%q) = %+v, want %+v", tc.room, got, tc.want)
		}
	}
}

func TestEmptyFileSetsNothing(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n"} {
		f, err := config.Parse("tertulia.yaml", []byte(data))
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		if got := f.Namespaces().Policy("team:x"); got != hub.DefaultNamespacePolicy() {
			t.Errorf("Parse(%q): policy %+v, want the default", data, got)
		}
	}
}

func TestBadFilesNameTheLineAndTheKey(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"unknown flag", "dev: true\nhttp_adr: :8000\n", `tertulia.yaml:2: unknown key "http-adr"`},
		{"unknown limit", "limits:\n  messages_per_minute: 3\n", `tertulia.yaml:2: unknown limit "messages_per_minute"`},
		{"unknown namespace key", "namespaces:\n  team:\n    privat: true\n", `tertulia.yaml:3: namespace "team": unknown key "privat"`},
		{"wrong type", "dev: maybe\n", `tertulia.yaml:1: dev: invalid value "maybe"`},
		{"bad publish", "namespaces:\n  news: {publish: everyone}\n", `tertulia.yaml:2: namespace "news": publish: want members or admins, not "everyone"`},
		{"bad ttl", "namespaces:\n  news:\n    history_ttl: soon\n", `tertulia.yaml:3: namespace "news": history_ttl: want a positive duration`},
		{"bad presence limit", "namespaces:\n  big: {presence_limit: 0}\n", `presence_limit: want a positive number`},
		{"namespace with a colon", "namespaces:\n  \"a:b\": {}\n", `tertulia.yaml:2: namespace "a:b": a namespace name has no ':'`},
		{"key twice", "dev: true\ndev: false\n", `tertulia.yaml:2: key "dev" given twice (first on line 1)`},
		{"key twice, two spellings", "http_addr: :1\nhttp-addr: :2\n", `given twice`},
		{"default twice", "namespaces:\n  default: {}\n  \"\": {}\n", `tertulia.yaml:3: key "" given twice`},
		{"map for a flag", "http_addr: {a: b}\n", `tertulia.yaml:1: key "http_addr": want a value or a list of values, not a map`},
		{"no value", "http_addr:\n", `tertulia.yaml:1: key "http_addr" has no value`},
		{"config in config", "config: other.yaml\n", `cannot name another one`},
		{"not a map", "- a\n- b\n", `tertulia.yaml:1: the file must be a map`},
		{"not YAML", "a: [b\n", `tertulia.yaml: yaml:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("tertulia.yaml", []byte(tc.data))
			if err == nil {
				fs, _ := flags()
				fs.Parse(nil)
				err = f.Apply(fs)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
