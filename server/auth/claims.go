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
// 7519 says NumericDate is a number. The claims are decoded in one pass:
// a token is verified on every connection.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var w struct {
		Username  string           `json:"username"`
		Roles     []string         `json:"roles"`
		Rooms     jwt.ClaimStrings `json:"rooms"`
		Locale    string           `json:"locale"`
		Issuer    string           `json:"iss"`
		Subject   string           `json:"sub"`
		Audience  jwt.ClaimStrings `json:"aud"`
		ExpiresAt json.RawMessage  `json:"exp"`
		NotBefore json.RawMessage  `json:"nbf"`
		IssuedAt  json.RawMessage  `json:"iat"`
		ID        string           `json:"jti"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Claims{Username: w.Username, Roles: w.Roles, Rooms: w.Rooms, Locale: w.Locale,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, ID: w.ID}}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		to   **jwt.NumericDate
	}{{"exp", w.ExpiresAt, &c.ExpiresAt}, {"nbf", w.NotBefore, &c.NotBefore}, {"iat", w.IssuedAt, &c.IssuedAt}} {
		if d.raw == nil {
			continue
		}
		if !isNumber(d.raw) {
			return fmt.Errorf("%s must be a number", d.name)
		}
		*d.to = new(jwt.NumericDate)
		if err := (*d.to).UnmarshalJSON(d.raw); err != nil {
			return err
		}
	}
	return nil
}

// isNumber reports whether raw, a valid JSON value, is a number.
func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}
