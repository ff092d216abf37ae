package loginas

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// csrfSecretLength is the size of a session's CSRF secret, in bytes.
const csrfSecretLength = sha256.Size

// csrfSecret derives the CSRF secret of a signed-in session from what the
// session already holds, so that no request pays for decoding a stored
// secret: the session's ID (a server-side store's; a cookie session has
// none), the signed-in user's ID, the impersonation record while
// impersonating, and the nonce that a return writes. Every session the
// plugin writes therefore gets a new secret. It returns nil for an anonymous
// session, which has no token.
func csrfSecret(key []byte, sessionID, userID, record, nonce string) []byte {
	if userID == "" {
		return nil
	}
	m := hmac.New(sha256.New, key)
	for _, part := range []string{sessionID, userID, record, nonce} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// sessionCSRFSecrets returns the request's CSRF secret under the current key
// first, then under each previous key, so that tokens issued before a secret
// rotation still verify; nil for an anonymous session.
func (p *Plugin) sessionCSRFSecrets(s sessions.Session, gs *gsessions.Session) [][]byte {
	userID := sessionID(s.Get(p.sessionKey))
	if userID == "" {
		return nil
	}
	record, _ := s.Get(p.recordKey).(string)
	nonce, _ := s.Get(p.nonceKey).(string)
	out := make([][]byte, 0, len(p.csrfKeys))
	for _, k := range p.csrfKeys {
		out = append(out, csrfSecret(k, gs.ID, userID, record, nonce))
	}
	return out
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

// tokenValid reports whether the request carries the session's CSRF token,
// in the header or the form field. It is always true when the app brings its
// own CSRF protection.
func (p *Plugin) tokenValid(c *gin.Context, s sessions.Session, gs *gsessions.Session) bool {
	if p.opts.ExternalCSRF {
		return true
	}
	sent := c.GetHeader(DefaultCSRFHeader)
	if sent == "" {
		sent = c.Request.PostFormValue(DefaultCSRFField)
	}
	for _, secret := range p.sessionCSRFSecrets(s, gs) {
		if tokenMatches(secret, sent) {
			return true
		}
	}
	return false
}

// CSRFToken returns a token for a form or script that posts to the plugin's
// routes, or "" for an anonymous visitor or when the app brings its own CSRF
// protection. Send it as the form field "loginas_csrf" or the header
// "X-Loginas-CSRF". A token is good for the session it was made for: a
// switch or a return makes a new one.
func (p *Plugin) CSRFToken(c *gin.Context) string {
	if p.opts.ExternalCSRF {
		return ""
	}
	s, gs, err := requestSession(c)
	if err != nil {
		return ""
	}
	secrets := p.sessionCSRFSecrets(s, gs)
	if len(secrets) == 0 {
		return ""
	}
	return maskToken(secrets[0])
}
