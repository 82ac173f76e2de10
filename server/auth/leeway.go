package auth

import "time"

// Leeway is the clock skew allowed past a token's exp: the hub lets a
// session outlive its token by as much (hub.Config.TokenLeeway), so that a
// token is good for a session exactly as long as it is good at connect.
func (a *Authenticator) Leeway() time.Duration { return a.cfg.Leeway }
