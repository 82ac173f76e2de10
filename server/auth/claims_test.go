package auth

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// referenceClaims decodes claims as jwt's own types do (jwt.ClaimStrings,
// jwt.NumericDate), with exp, nbf and iat refused unless JSON numbers: what
// tokenClaims must agree with, only faster.
func referenceClaims(b []byte) (Claims, error) {
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
		return Claims{}, err
	}
	c := Claims{Username: w.Username, Roles: w.Roles, Rooms: w.Rooms, Locale: w.Locale,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, ID: w.ID}}
	for _, d := range []struct {
		raw json.RawMessage
		to  **jwt.NumericDate
	}{{w.ExpiresAt, &c.ExpiresAt}, {w.NotBefore, &c.NotBefore}, {w.IssuedAt, &c.IssuedAt}} {
		if d.raw == nil {
			continue
		}
		if d.raw[0] != '-' && (d.raw[0] < '0' || d.raw[0] > '9') {
			return Claims{}, errDateNotNumber
		}
		*d.to = new(jwt.NumericDate)
		if err := (*d.to).UnmarshalJSON(d.raw); err != nil {
			return Claims{}, err
		}
	}
	if len(c.Rooms) == 0 {
		c.Rooms = nil
	}
	if len(c.Audience) == 0 {
		c.Audience = nil
	}
	return c, nil
}

var claimsSeeds = []string{
	`{"sub":"alice","exp":1999999999,"iat":1700000000.25,"nbf":-3.5,"username":"Alice","roles":["admin"],"rooms":"team:*","aud":["a","b"],"iss":"i","jti":"j","locale":"es"}`,
	`{"sub":"alice","exp":1999999999.999999999,"rooms":["team:*","news:daily"],"aud":"chat"}`,
	`{"sub":"a\u00e9\"b","exp":1e9,"rooms":["caf\u00e9","x\\y"],"aud":null}`,
	`{"sub":"a","exp":"1999999999"}`,
	`{"sub":"a","exp":null}`,
	`{"sub":"a","exp":1,"nbf":null}`,
	`{"sub":"a","exp":1,"iat":true}`,
	`{"sub":"a","exp":1e400}`,
	`{"sub":"a","exp":1,"rooms":["a",null]}`,
	`{"sub":"a","exp":1,"rooms":[7]}`,
	`{"sub":"a","exp":1,"rooms":7}`,
	`{"sub":"a","exp":1,"rooms":[]}`,
	`{"sub":"a","exp":1,"aud":{}}`,
	`{"SUB":"a","Exp":1,"ROOMS":"r"}`,
	`{"sub":"a","sub":"b","exp":1,"exp":2}`,
	"{\"sub\":\"\xff\xfe\",\"exp\":1,\"rooms\":\"\xff\"}",
	`{"sub":7,"exp":1}`,
	`[]`,
	`null`,
}

// tokenClaims reads every claim set as jwt's types do, or refuses it as
// they do.
func TestTokenClaimsAgreeWithJWTTypes(t *testing.T) {
	for _, s := range claimsSeeds {
		checkClaimsAgree(t, []byte(s))
	}
}

func FuzzTokenClaims(f *testing.F) {
	for _, s := range claimsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkClaimsAgree)
}

func checkClaimsAgree(t *testing.T, b []byte) {
	want, wantErr := referenceClaims(b)
	var tc tokenClaims
	gotErr := json.Unmarshal(b, &tc)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("%s: tokenClaims error %v, jwt's types %v", b, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if got := tc.claims(); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\ntokenClaims %+v\njwt's types %+v", b, got, want)
	}
}

// claims is c as a Claims, to compare with a reference decoding.
func (c *tokenClaims) claims() Claims {
	return Claims{Username: c.Username, Roles: c.Roles, Rooms: c.Rooms.list(), Locale: c.Locale,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience.list(), ID: c.ID,
			ExpiresAt: c.ExpiresAt.date, NotBefore: c.NotBefore.date, IssuedAt: c.IssuedAt.date}}
}
