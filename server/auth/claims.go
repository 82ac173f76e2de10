package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are Tertulia's JWT claims, as Issue mints them.
type Claims struct {
	Username string   `json:"username,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// Rooms lists the rooms, or patterns such as "team:*", of private
	// namespaces the user may join (hub.MatchRoom); one string or a list.
	Rooms jwt.ClaimStrings `json:"rooms,omitempty"`
	// Locale is the user's language (BCP 47, e.g. "es"): the server's
	// texts to the user's sessions are in it where the server has it.
	Locale string `json:"locale,omitempty"`
	jwt.RegisteredClaims
}

// tokenClaims is what Verify decodes a token's claims into. The jwt parser
// decodes it with encoding/json in one pass, straight into these fields
// (a token is verified on every connection: a Claims with its own
// UnmarshalJSON cost the claims a second and third pass), and its
// validator reads exp, nbf and iat through the jwt.Claims methods.
type tokenClaims struct {
	Username  string       `json:"username"`
	Roles     []string     `json:"roles"`
	Rooms     claimStrings `json:"rooms"`
	Locale    string       `json:"locale"`
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  claimStrings `json:"aud"`
	ExpiresAt numericDate  `json:"exp"`
	NotBefore numericDate  `json:"nbf"`
	IssuedAt  numericDate  `json:"iat"`
	ID        string       `json:"jti"`
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date, nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date, nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date, nil }
func (c *tokenClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *tokenClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(c.Audience.list()), nil
}

// numericDate is exp, nbf or iat: a JSON number of seconds since the
// epoch, and nothing else. jwt.NumericDate takes "1999999999", a string,
// as well, and RFC 7519 says NumericDate is a number. It is a struct, not
// a pointer, so that encoding/json hands it a null too, which it refuses.
type numericDate struct {
	date *jwt.NumericDate // nil if the claim is absent
}

// errDateNotNumber refuses an exp, nbf or iat that is not a JSON number.
var errDateNotNumber = errors.New("exp, nbf and iat must be numbers")

// UnmarshalJSON reads b, a valid JSON value, as jwt.NumericDate does
// (fractions of a second kept to jwt.TimePrecision), but only if it is a
// number.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errDateNotNumber
	}
	// A valid JSON number is also one for ParseFloat.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errDateNotNumber
	}
	if f > maxDate || f < -maxDate {
		return errDateOutOfRange
	}
	secs, frac := math.Modf(f)
	d.date = jwt.NewNumericDate(time.Unix(int64(secs), int64(frac*1e9)))
	return nil
}

// maxDate is 9999-12-31T23:59:59Z, in seconds: the latest time RFC 3339
// (and a protobuf Timestamp) can write, as the welcome's expires_at is.
const maxDate = 253402300799

var errDateOutOfRange = errors.New("exp, nbf and iat must be before the year 10000")

// claimStrings is aud or rooms: one string or a list of strings, as
// jwt.ClaimStrings reads them (null is no list; a list holding anything
// but strings is refused), without its detour through []any.
type claimStrings []claimString

// list is s as strings, nil if there are none.
func (s claimStrings) list() []string {
	if len(s) == 0 {
		return nil
	}
	l := make([]string, len(s))
	for i, v := range s {
		l[i] = string(v)
	}
	return l
}

func (s *claimStrings) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		*s = claimStrings{""}
		return (&(*s)[0]).UnmarshalJSON(b)
	case len(b) > 0 && b[0] == '[':
		var l []claimString
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		*s = l
		return nil
	case string(b) == "null":
		return nil
	}
	return jwt.ErrInvalidType
}

// claimString is one string of a claimStrings, which must be a string:
// encoding/json would read a null as "".
type claimString string

// UnmarshalJSON reads b, a valid JSON value. A string without escapes is
// taken as it is: encoding/json checked it already.
func (s *claimString) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return jwt.ErrInvalidType
	}
	if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		*s = claimString(inner)
		return nil
	}
	return json.Unmarshal(b, (*string)(s))
}
