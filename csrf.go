package loginas

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// csrfSecretLength is the size of a session's CSRF secret, in bytes.
const csrfSecretLength = sha256.Size

// csrfSecret derives the CSRF secret of a signed-in session from the random
// value the session is bound to (its "binding") and the signed-in user's ID.
// Nothing is stored where something random is at hand already:
//   - an impersonated session is bound to its impersonation's ID, which its
//     record carries;
//   - a server-side store's session is bound to its session ID, which the
//     switch, the return, the logout and the app's login (RenewSession)
//     replace;
//   - a cookie session has neither: it is bound to a random value kept under
//     RecordKey+".csrf", which the return and the logout write into the
//     session they make, the first token issued to a session made by the
//     app's own login creates, and a session whose user the app removed
//     loses.
//
// Every token therefore dies with its session, in every kind of store.
func csrfSecret(key []byte, binding, userID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(binding))
	m.Write([]byte{0})
	m.Write([]byte(userID))
	return m.Sum(nil)
}

// maskToken returns the CSRF secret XOR-ed with a fresh one-time pad, pad
// first. Each page gets a different string, so a compressed page does not
// leak the secret (BREACH), while any of them verifies.
func maskToken(secret []byte) string {
	out := make([]byte, 2*len(secret))
	_, _ = rand.Read(out[:len(secret)])
	for i := range secret {
		out[len(secret)+i] = out[i] ^ secret[i]
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

// tokenMatches reports, in constant time, whether a masked token sent by the
// client unmasks to secret.
func tokenMatches(secret []byte, sent string) bool {
	if len(secret) != csrfSecretLength || len(sent) != base64.RawURLEncoding.EncodedLen(2*csrfSecretLength) {
		return false
	}
	raw, err := strictBase64.DecodeString(sent)
	if err != nil || len(raw) != 2*csrfSecretLength {
		return false
	}
	unmasked := make([]byte, csrfSecretLength)
	for i := range unmasked {
		unmasked[i] = raw[i] ^ raw[csrfSecretLength+i]
	}
	return subtle.ConstantTimeCompare(unmasked, secret) == 1
}

// tokenProblem says what is wrong with the CSRF token of r, a request with a
// signed-in user or one that needs a user, or "" when the token is good or
// the app brings its own CSRF protection. The texts tell a developer apart
// "nobody is signed in", "no token sent" and "wrong token".
func (p *Plugin) tokenProblem(r *request) string {
	if p.opts.ExternalCSRF {
		return ""
	}
	sent := r.c.GetHeader(CSRFHeader)
	if sent == "" {
		sent = r.field(CSRFField)
	}
	userID := sessionID(r.user)
	binding := p.binding(r.s, r.gs, r.imp)
	switch {
	case r.user == nil:
		return fmt.Sprintf("nobody is signed in (no value under Options.SessionKey %q), so no CSRF token can be valid", p.opts.SessionKey)
	case sent == "":
		return "no CSRF token: send the field " + CSRFField + " or the header " + CSRFHeader + ", as the partials and Token(c) give it"
	case binding == "":
		return "CSRF token wrong: this session was never given a token (it was made after the token's page)"
	}
	for _, key := range p.csrfKeys {
		if tokenMatches(csrfSecret(key, binding, userID), sent) {
			return ""
		}
	}
	return "CSRF token wrong: it belongs to another session, or to this browser's session before a switch, return or logout"
}

// Token returns a CSRF token for a form or script that posts to the
// plugin's routes (and to a route behind ReturnRoute), or "" for an
// anonymous visitor, when the app brings its own CSRF protection, or when
// the plugin's middleware did not run. Send it as the form field CSRFField
// or the header CSRFHeader. A token is good for the session it was made
// for: a switch, a return or a logout make a new one.
//
// The first token of a cookie session made by the app's own login binds the
// session to a new random value, which Token saves in the session itself:
// call it (or the template helpers, which call it) before the response body
// is written.
func Token(c *gin.Context) string {
	p := pluginOf(c)
	if p == nil || p.opts.ExternalCSRF {
		return ""
	}
	s, gs, err := requestSession(c)
	if err != nil {
		return ""
	}
	userID := sessionID(s.Get(p.sessionKey))
	if userID == "" {
		return ""
	}
	binding := p.binding(s, gs, current(c))
	if binding == "" {
		binding = newRecordID()
		s.Set(p.csrfKey, binding)
		if err := s.Save(); err != nil {
			p.opts.Logger.Error("loginas: saving the session's CSRF binding", "err", err)
			return ""
		}
	}
	return maskToken(csrfSecret(p.csrfKeys[0], binding, userID))
}

// binding returns what the session's tokens are bound to: the
// impersonation's ID, a server-side session's ID, else the random value
// stored in a cookie session; "" when a cookie session has none yet.
func (p *Plugin) binding(s sessions.Session, gs *gsessions.Session, imp *Impersonation) string {
	switch {
	case imp != nil:
		return imp.ID
	case gs.ID != "":
		return gs.ID
	}
	b, _ := s.Get(p.csrfKey).(string)
	return b
}

// pluginOf returns the plugin whose middleware ran on the request, or nil.
func pluginOf(c *gin.Context) *Plugin {
	v, _ := c.Get(pluginKey)
	p, _ := v.(*Plugin)
	return p
}
