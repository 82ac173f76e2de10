package auth

import (
	"encoding/json"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are Tertulia's JWT claims.
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

// UnmarshalJSON decodes c, refusing an exp, nbf or iat that is not a JSON
// number: jwt.NumericDate takes "1999999999", a string, as well, and RFC
// 7519 says NumericDate is a number.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &dates); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", dates.Exp}, {"nbf", dates.Nbf}, {"iat", dates.Iat}} {
		if d.raw != nil && !isNumber(d.raw) {
			return fmt.Errorf("%s must be a number", d.name)
		}
	}
	type plain Claims // no UnmarshalJSON: no recursion
	return json.Unmarshal(b, (*plain)(c))
}

// isNumber reports whether raw, a valid JSON value, is a number.
func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}
