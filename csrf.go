package loginas

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
)

// csrfSeedLength is the size of the per-session CSRF secret, in bytes.
const csrfSeedLength = 32

// newCSRFSeed returns a fresh per-session CSRF secret, base64-encoded so it
// is a plain string in any session store.
func newCSRFSeed() string {
	var b [csrfSeedLength]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// maskToken returns the session's CSRF secret XOR-ed with a fresh one-time
// pad, pad first. Each page gets a different string, so a compressed page
// does not leak the secret (BREACH), while any of them verifies.
func maskToken(seed string) string {
	secret, err := base64.RawURLEncoding.DecodeString(seed)
	if err != nil || len(secret) != csrfSeedLength {
		return ""
	}
	out := make([]byte, 2*csrfSeedLength)
	_, _ = rand.Read(out[:csrfSeedLength])
	for i := range secret {
		out[csrfSeedLength+i] = out[i] ^ secret[i]
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

// tokenMatches reports, in constant time, whether a masked token sent by the
// client unmasks to the session's CSRF secret.
func tokenMatches(seed, sent string) bool {
	secret, err := base64.RawURLEncoding.DecodeString(seed)
	if err != nil || len(secret) != csrfSeedLength || len(sent) != base64.RawURLEncoding.EncodedLen(2*csrfSeedLength) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sent)
	if err != nil || len(raw) != 2*csrfSeedLength {
		return false
	}
	unmasked := make([]byte, csrfSeedLength)
	for i := range unmasked {
		unmasked[i] = raw[i] ^ raw[csrfSeedLength+i]
	}
	return subtle.ConstantTimeCompare(unmasked, secret) == 1
}

// tokenValid reports whether the request carries the session's CSRF token,
// in the form field or the header. It is always true when the app brings its
// own CSRF protection.
func (p *Plugin) tokenValid(c *gin.Context, s sessions.Session) bool {
	if p.opts.ExternalCSRF {
		return true
	}
	seed, _ := s.Get(p.opts.CSRFKey).(string)
	sent := c.GetHeader(DefaultCSRFHeader)
	if sent == "" {
		sent = c.Request.PostFormValue(DefaultCSRFField)
	}
	return seed != "" && tokenMatches(seed, sent)
}

// CSRFToken returns a token for a form or script that posts to the plugin's
// routes, or "" when the session has no CSRF secret (anonymous visitors) or
// the app brings its own CSRF protection. Send it as the form field
// "loginas_csrf" or the header "X-Loginas-CSRF".
func (p *Plugin) CSRFToken(c *gin.Context) string {
	if p.opts.ExternalCSRF {
		return ""
	}
	s, _, err := requestSession(c)
	if err != nil {
		return ""
	}
	seed, _ := s.Get(p.opts.CSRFKey).(string)
	if seed == "" {
		return ""
	}
	return maskToken(seed)
}
