package loginas_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gin-loginas/loginas"
)

func TestParseID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id string
		ok bool
	}{
		{"alice", true},
		{"42", true},
		{"user@example.com", true},
		{"550e8400-e29b-41d4-a716-446655440000", true},
		{"Zoë", true},
		{"a b", true},
		{"usr_5F12345", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("é", 64), true}, // 128 bytes
		{"", false},
		{" ", false},
		{" alice", false},
		{"alice ", false},
		{"alice\t", false},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("é", 64) + "a", false},
		{"a/b", false},
		{"/", false},
		{`a\b`, false},
		{".", false},
		{"..", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x1bb", false},
		{"a\x7fb", false},
		{"a\u0085b", false}, // C1 control
		{"a\xffb", false},   // not UTF-8
		{"\xc0\xaf", false}, // overlong slash
		{"a\ufffdb", false}, // replacement character
	}
	for _, tc := range cases {
		t.Run(strings.ToValidUTF8(tc.id, "?"), func(t *testing.T) {
			err := loginas.ParseID(tc.id)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, loginas.ErrBadID)
			}
		})
	}
}

func TestIsLocalURL(t *testing.T) {
	t.Parallel()
	for _, tc := range nextCases {
		t.Run(strings.ToValidUTF8(tc.next, "?"), func(t *testing.T) {
			assert.Equal(t, tc.local, loginas.IsLocalURL(tc.next))
		})
	}
	extra := []struct {
		u  string
		ok bool
	}{
		{"/" + strings.Repeat("a", 2047), true},
		{"/a//b", true},
		{"/a/../b", true}, // a path on this site, however odd
		{"/%2F%2Fevil.example", true},
		{"/\\", false},
		{"/ok\x7f", false},
		{"//", false},
		{"///evil.example", false},
		{"?next=/x", false},
		{"#frag", false},
		{"mailto:a@example.com", false},
	}
	for _, tc := range extra {
		t.Run(tc.u, func(t *testing.T) {
			assert.Equal(t, tc.ok, loginas.IsLocalURL(tc.u))
		})
	}
}

// TestMalformedIDsOverHTTP sends IDs no user can have. They are 4xx answers
// (or 303 refusals for a browser), never 5xx, and change nothing.
func TestMalformedIDsOverHTTP(t *testing.T) {
	t.Parallel()
	paths := map[string]string{
		"space":                "%20",
		"leading space":        "%20alice",
		"tab":                  "%09",
		"NUL":                  "%00",
		"line feed":            "alice%0A",
		"carriage return":      "alice%0D",
		"DEL":                  "%7F",
		"C1 control":           "a%C2%85b",
		"129 bytes":            strings.Repeat("a", 129),
		"10000 bytes":          strings.Repeat("a", 10000),
		"dot":                  ".",
		"dot dot":              "..",
		"encoded dot dot":      "%2E%2E",
		"encoded slash":        "a%2Fb",
		"encoded slash prefix": "%2Falice",
		"backslash":            "a%5Cb",
		"dot dot backslash":    "..%5Calice",
		"invalid UTF-8":        "%FF",
		"overlong slash":       "%C0%AF",
		"replacement char":     "%EF%BF%BD",
		"empty":                "",
		"query only":           "?id=alice",
	}
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		before := c.state()
		for name, p := range paths {
			t.Run(name, func(t *testing.T) {
				path := "/admin/loginas/" + p
				r := c.post(path, c.withToken(nil), jsonAccept)
				assert.GreaterOrEqual(t, r.status, 400, r.body)
				assert.Less(t, r.status, 500, r.body)
				r = c.post(path, c.withToken(nil))
				assert.Less(t, r.status, 500, r.body)
				assert.NotEqual(t, http.StatusOK, r.status)
			})
		}
		c.flashes()
		after := c.state()
		assert.Equal(t, "admin", after.user())
		assert.False(t, after.Impersonated)
		assert.Equal(t, before.SessionID, after.SessionID)
		for _, e := range a.audit.Events() {
			assert.Equal(t, loginas.ActionDenied, e.Action)
			assert.Equal(t, loginas.CauseBadID, e.Cause, "only bad_id refusals: %+v", e)
			assert.True(t, e.TargetID == "(malformed)", "malformed input is not copied into the audit trail: %q", e.TargetID)
		}
	})
}

func TestReasonOverTheCap(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.MaxReasonLength = 10 }))
		c := a.signedIn("admin")
		r := c.switchTo("alice", url.Values{"reason": {"12345678901"}}, jsonAccept)
		assert.Equal(t, http.StatusUnprocessableEntity, r.status)
		assert.Equal(t, "The reason is too long.", r.jsonBody(t)["error"])
		r = c.switchTo("alice", url.Values{"reason": {"  1234567890  "}})
		assert.Equal(t, http.StatusSeeOther, r.status, "the cap applies after trimming")
		assert.Equal(t, "1234567890", a.audit.only(t, loginas.ActionStart, "").Reason)
	})
}

func TestOversizedBodyIsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		form := c.withToken(url.Values{"reason": {strings.Repeat("x", 70<<10)}})
		r := c.post(a.plugin.LoginAsURL("alice"), form)
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.status)
		assert.Equal(t, "admin", c.state().user())
	})
}

func TestUnreadableBodyIsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		bad := c.doRaw(http.MethodPost, a.plugin.LoginAsURL("alice"), "reason=%zz&x=%",
			header("Content-Type", "application/x-www-form-urlencoded", loginas.CSRFHeader, c.token()))
		assert.Equal(t, http.StatusBadRequest, bad.status)
		assert.Equal(t, "admin", c.state().user())
	})
}
