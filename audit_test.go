package loginas_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// cleanField checks one text field of an event: valid UTF-8, within max
// bytes, with no control character but tab (and newline, when multiline)
// and no bidirectional control.
func cleanField(t *testing.T, name, v string, max int, multiline bool) {
	t.Helper()
	assert.Truef(t, utf8.ValidString(v), "%s is not UTF-8: %q", name, v)
	assert.LessOrEqualf(t, len(v), max, "%s has %d bytes", name, len(v))
	for _, r := range v {
		bad := (unicode.IsControl(r) && r != '\t' && (r != '\n' || !multiline)) ||
			(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u2028' || r == '\u2029'
		assert.Falsef(t, bad, "%s holds %U: %q", name, r, v)
	}
}

// Every text field of an event that comes from the request is capped at
// 1 KiB and has its control characters escaped.
func TestEventTextIsCappedAndClean(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		// Go's server refuses control characters in headers; other servers
		// may not, and the path below carries them decoded.
		ua := "evil\u202eagent\xff" + strings.Repeat("é", 2000)
		r := c.post("/admin/loginas/alice%0a%1b%E2%80%AE"+strings.Repeat("x", 90), c.withToken(nil), header("User-Agent", ua), jsonAccept)
		require.Equal(t, http.StatusBadRequest, r.status, r.body)
		c.mustSwitch("alice")
		c.post("/test/set", nil, header("User-Agent", ua)) // a read-only-free app route: no event
		for _, e := range a.audit.Events() {
			cleanField(t, "UserAgent", e.UserAgent, 1024, false)
			cleanField(t, "Path", e.Path, 1024, false)
			cleanField(t, "Detail", e.Detail, 1024, true)
			cleanField(t, "Reason", e.Reason, 1024, true)
			cleanField(t, "ActorName", e.ActorName, 1024, false)
			cleanField(t, "TargetName", e.TargetName, 1024, false)
		}
		denied := a.audit.only(t, loginas.ActionDenied, loginas.CauseBadID)
		assert.True(t, strings.HasPrefix(denied.UserAgent, "evil\\u202eagent\uFFFDéé"), denied.UserAgent)
		assert.Contains(t, denied.Path, `alice\n\x1b\u202e`, "the decoded path is escaped")
	})
}

// Display names are cleaned of control and bidirectional-override
// characters in the banner, the messages and the audit trail.
func TestDisplayNamesAreCleaned(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		a.users.update("bob", func(u *loginas.User) { u.Name = "Bob\u202egnp.exe\x1b[2J\nroot" })
		c := a.signedIn("admin")
		c.mustSwitch("bob")
		const clean = `Bob\u202egnp.exe\x1b[2J\nroot`
		assert.Equal(t, []string{"You are now signed in as " + clean + ". Use “Return to my account” to go back."}, c.flashes())
		start := a.audit.only(t, loginas.ActionStart, "")
		assert.Equal(t, clean, start.TargetName)
		banner := c.get("/test/banner").jsonBody(t)
		assert.Equal(t, clean, banner["TargetName"])
		assert.Contains(t, banner["Text"], clean)
	})
}
