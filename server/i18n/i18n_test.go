package i18n_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/i18n"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMatch(t *testing.T) {
	c := i18n.English()
	for _, tc := range []struct {
		prefs []string
		want  string
	}{
		{nil, "en"},
		{[]string{"", ""}, "en"},
		{[]string{"es"}, "es"},
		{[]string{"es-MX"}, "es"},
		{[]string{"", "es-ES,es;q=0.9,en;q=0.8"}, "es"},
		{[]string{"en", "es"}, "en"},                // the claim wins over Accept-Language
		{[]string{"fr", "es"}, "es"},                // a claim we have no texts for falls through
		{[]string{"fr-FR,fr;q=0.9,es;q=0.5"}, "es"}, // the best we have of the list
		{[]string{"de"}, "en"},
		{[]string{"not a tag;;;"}, "en"},
	} {
		if got := c.Tag(c.Match(tc.prefs...)).String(); got != tc.want {
			t.Errorf("Match(%q) = %s, want %s", tc.prefs, got, tc.want)
		}
	}
}

func TestDefaultLocale(t *testing.T) {
	c, err := i18n.New("es")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sprintf(c.Match("de"), "Welcome %s", "ana"); got != "Bienvenido ana" {
		t.Errorf("default es: %q, want Bienvenido ana", got)
	}
	if _, err := i18n.New("xx-unknown"); err == nil || !strings.Contains(err.Error(), "en, es") {
		t.Errorf("New(xx-unknown) = %v, want an error naming the languages there are", err)
	}
}

func TestSpanishTexts(t *testing.T) {
	c := i18n.English()
	es := c.Match("es")
	for _, tc := range []struct {
		key  string
		args []any
		en   string
		es   string
	}{
		{"Connected to the chat", nil, "Connected to the chat", "Conectado al chat"},
		{"%s joined room %s", []any{"ana", "café con leche"}, "ana joined room café con leche", "ana se unió a la sala café con leche"},
		{"User %s is not connected", []any{"zed"}, "User zed is not connected", "Usuario zed no está conectado"},
		{"not in room %q", []any{"sala"}, `not in room "sala"`, `no estás en la sala "sala"`},
		{"field %q must be a JSON %s, not a JSON %s", []any{"since", "object", "string"}, `field "since" must be a JSON object, not a JSON string`, `el campo "since" debe ser de tipo object de JSON, no string`},
		{"a text with no translation", nil, "a text with no translation", "a text with no translation"},
	} {
		if got := c.Sprintf(0, tc.key, tc.args...); got != tc.en {
			t.Errorf("en %q = %q, want %q", tc.key, got, tc.en)
		}
		if got := c.Sprintf(es, tc.key, tc.args...); got != tc.es {
			t.Errorf("es %q = %q, want %q", tc.key, got, tc.es)
		}
	}
	if l, ok := c.Which("tipo de mensaje desconocido", "unknown frame type"); !ok || l != es {
		t.Errorf("Which = %v, %v; want es", l, ok)
	}
}
