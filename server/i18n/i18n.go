// Package i18n holds the texts Tertulia's server sends to people, in every
// language it speaks, and picks the language of each connection.
//
// Texts are keyed by their English format string, as golang.org/x/text/message
// does it: a call site reads as the English text it sends, a missing
// translation falls back to English rather than to a key, and numbers are
// written as the language writes them (4,096 in English, 4.096 in Spanish).
// A plain map keyed by message id would have needed both an id and an
// English text at every call site, and its own fallback and number rules.
//
// Machine-readable codes (error codes, frame types) are never translated:
// only the human text beside them is.
package i18n

import (
	"fmt"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Lang is one language of a Catalog, small enough to keep per connection and
// to key an encoding cache with. The zero Lang is English.
type Lang uint8

// Catalog is every server text in every language the server speaks, and the
// language a connection gets when it states no preference the server can
// meet. It is safe for concurrent use.
type Catalog struct {
	tags     []language.Tag
	matcher  language.Matcher
	printers []*message.Printer
	def      Lang
}

// New returns the catalog with defaultLocale (a BCP 47 tag such as "es";
// "" means "en") as the language of connections that state no usable
// preference. A default the server has no texts for is an error.
func New(defaultLocale string) (*Catalog, error) {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for _, tr := range translations {
		for key, text := range tr.texts {
			if err := b.SetString(tr.tag, key, text); err != nil {
				return nil, fmt.Errorf("catalog %s: %w", tr.tag, err)
			}
		}
	}
	tags := []language.Tag{language.English} // first: the matcher's fallback
	for _, tr := range translations {
		tags = append(tags, tr.tag)
	}
	c := &Catalog{tags: tags, matcher: language.NewMatcher(tags)}
	for _, t := range tags {
		c.printers = append(c.printers, message.NewPrinter(t, message.Catalog(b)))
	}
	if defaultLocale == "" {
		return c, nil
	}
	l, ok := c.match(defaultLocale)
	if !ok {
		return nil, fmt.Errorf("locale %q: no texts in that language (have %s)", defaultLocale, c.languages())
	}
	c.def = l
	return c, nil
}

// English is the catalog with English as the default language.
func English() *Catalog {
	c, err := New("")
	if err != nil {
		panic(err) // the translations are compiled in: a test catches this
	}
	return c
}

func (c *Catalog) languages() string {
	s := make([]string, len(c.tags))
	for i, t := range c.tags {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

// Default is the language of connections without a usable preference.
func (c *Catalog) Default() Lang { return c.def }

// Tag is the BCP 47 tag of l.
func (c *Catalog) Tag(l Lang) language.Tag { return c.tags[l] }

// Match picks a connection's language. Each of prefs is a BCP 47 tag (a
// token's locale claim) or an Accept-Language value, most authoritative
// first; empty ones are skipped. The first that names a language the
// catalog has wins; if none does, the default.
func (c *Catalog) Match(prefs ...string) Lang {
	for _, p := range prefs {
		if l, ok := c.match(p); ok {
			return l
		}
	}
	return c.def
}

func (c *Catalog) match(pref string) (Lang, bool) {
	if strings.TrimSpace(pref) == "" {
		return 0, false
	}
	tags, _, err := language.ParseAcceptLanguage(pref)
	if err != nil || len(tags) == 0 {
		return 0, false
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return 0, false
	}
	return Lang(i), true
}

// Sprintf formats the text whose English format is key in language l.
func (c *Catalog) Sprintf(l Lang, key string, args ...any) string {
	if int(l) >= len(c.printers) {
		l = 0
	}
	return c.printers[l].Sprintf(key, args...)
}

// Which returns the language in which the text whose English format is key
// (with args) reads as text: a bridge that relays another node's answers
// learns a session's language from one of them.
func (c *Catalog) Which(text, key string, args ...any) (Lang, bool) {
	for i := range c.printers {
		if c.printers[i].Sprintf(key, args...) == text {
			return Lang(i), true
		}
	}
	return 0, false
}
