package loginas_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

const msgForbidden = "Forbidden: the request did not come from this site or its security token is missing or wrong."

// assertForbidden checks a 403 that tells a forged request nothing: no
// redirect, no flash, no change to the session.
func assertForbidden(t *testing.T, c *client, r *reply, before state) {
	t.Helper()
	assert.Equal(t, http.StatusForbidden, r.status, r.body)
	assert.Empty(t, r.location())
	assert.Empty(t, sessionCookies(r), "the session is not written")
	assert.Empty(t, c.flashes())
	after := c.state()
	assert.Equal(t, before.user(), after.user())
	assert.Equal(t, before.Impersonated, after.Impersonated)
	assert.Equal(t, before.SessionID, after.SessionID)
}

// settle consumes pending flash messages and returns the session's state,
// for comparing with the state after a refused request.
func (c *client) settle() state {
	c.t.Helper()
	c.flashes()
	return c.state()
}

func TestCrossOriginRequestsAreRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		headers http.Header
	}{
		{"cross-site fetch", header("Sec-Fetch-Site", "cross-site")},
		{"same-site fetch", header("Sec-Fetch-Site", "same-site")},
		{"foreign Origin", header("Origin", "http://evil.example")},
		{"foreign Origin on the same host name", header("Origin", "http://127.0.0.1:1")},
		{"null Origin", header("Origin", "null")},
		{"cross-site fetch with own Origin", header("Sec-Fetch-Site", "cross-site", "Origin", "http://127.0.0.1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st)
				c := a.signedIn("admin")
				before := c.settle()
				r := c.switchTo("alice", nil, tc.headers)
				assertForbidden(t, c, r, before)
				assert.Contains(t, r.body, msgForbidden)

				r = c.switchTo("alice", nil, tc.headers, jsonAccept)
				assert.Equal(t, http.StatusForbidden, r.status)
				assert.Equal(t, msgForbidden, r.jsonBody(t)["error"])

				c.mustSwitch("alice")
				before = c.settle()
				assertForbidden(t, c, c.logout(nil, tc.headers), before)

				anon := a.client()
				anonBefore := anon.settle()
				assertForbidden(t, anon, anon.post(a.plugin.LogoutURL(), nil, tc.headers), anonBefore)
			})
		})
	}
}

func TestSameOriginRequestsPass(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		for name, h := range map[string]http.Header{
			"same-origin fetch": header("Sec-Fetch-Site", "same-origin"),
			"user-initiated":    header("Sec-Fetch-Site", "none"),
			"own Origin":        header("Origin", a.origin()),
			"no browser header": nil,
		} {
			t.Run(name, func(t *testing.T) {
				c := a.signedIn("admin")
				r := c.switchTo("alice", nil, h)
				assert.Equal(t, http.StatusSeeOther, r.status, r.body)
				r = c.logout(nil, h)
				assert.Equal(t, http.StatusSeeOther, r.status, r.body)
				assert.Equal(t, "admin", c.state().user())
			})
		}
	})
}

func TestTrustedOrigins(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.TrustedOrigins = []string{"https://admin.example"}
		}))
		c := a.signedIn("admin")
		before := c.settle()
		r := c.switchTo("alice", nil, header("Origin", "https://other.example", "Sec-Fetch-Site", "cross-site"))
		assertForbidden(t, c, r, before)
		r = c.switchTo("alice", nil, header("Origin", "http://admin.example", "Sec-Fetch-Site", "cross-site"))
		assertForbidden(t, c, r, before)

		r = c.switchTo("alice", nil, header("Origin", "https://admin.example", "Sec-Fetch-Site", "cross-site"))
		assert.Equal(t, http.StatusSeeOther, r.status, r.body)
		assert.Equal(t, "alice", c.state().user())
		r = c.logout(nil, header("Origin", "https://admin.example", "Sec-Fetch-Site", "cross-site"))
		assert.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "admin", c.state().user())
	})
}

func TestBadTokensAreRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		other := a.client()
		other.signIn("root")
		good := c.token()
		raw, err := base64.RawURLEncoding.DecodeString(good)
		require.NoError(t, err)
		flipped := append([]byte(nil), raw...)
		flipped[len(flipped)-1] ^= 1

		cases := map[string]url.Values{
			"missing":                {},
			"empty":                  {loginas.CSRFField: {""}},
			"another session's":      {loginas.CSRFField: {other.token()}},
			"one bit changed":        {loginas.CSRFField: {base64.RawURLEncoding.EncodeToString(flipped)}},
			"truncated":              {loginas.CSRFField: {good[:len(good)-1]}},
			"extended":               {loginas.CSRFField: {good + "A"}},
			"not base64":             {loginas.CSRFField: {strings.Repeat("!", len(good))}},
			"all zero":               {loginas.CSRFField: {base64.RawURLEncoding.EncodeToString(make([]byte, len(raw)))}},
			"very long":              {loginas.CSRFField: {strings.Repeat("A", 4000)}},
			"under another name":     {"csrf_token": {good}},
			"unmasked pad half only": {loginas.CSRFField: {base64.RawURLEncoding.EncodeToString(raw[:len(raw)/2])}},
		}
		before := c.settle()
		for name, form := range cases {
			t.Run(name, func(t *testing.T) {
				assertForbidden(t, c, c.post(a.plugin.LoginAsURL("alice"), form), before)
				assertForbidden(t, c, c.post(a.plugin.LogoutURL(), form), before)
			})
		}
		t.Run("in the query string", func(t *testing.T) {
			r := c.post(a.plugin.LoginAsURL("alice")+"?"+url.Values{loginas.CSRFField: {good}}.Encode(), nil)
			assertForbidden(t, c, r, before)
		})
		t.Run("wrong header", func(t *testing.T) {
			r := c.post(a.plugin.LoginAsURL("alice"), nil, header(loginas.CSRFHeader, other.token()))
			assertForbidden(t, c, r, before)
		})
		assert.Equal(t, "root", other.state().user())
	})
}

func TestTokensAreMaskedAndReusable(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		t1, t2 := c.token(), c.token()
		assert.NotEqual(t, t1, t2, "each page gets a differently masked token")
		for _, tok := range []string{t1, t2} {
			r := c.post(a.plugin.LoginAsURL("root"), url.Values{loginas.CSRFField: {tok}}, jsonAccept)
			assert.Equal(t, http.StatusForbidden, r.status)
			assert.Equal(t, "You cannot log in as a superuser.", r.jsonBody(t)["error"], "the token passed; the target did not")
		}
		r := c.post(a.plugin.LoginAsURL("alice"), url.Values{loginas.CSRFField: {t1}})
		assert.Equal(t, http.StatusSeeOther, r.status, "an earlier page's token still works")
	})
}

func TestTokenChangesWithTheSession(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		adminToken := c.token()
		c.mustSwitch("alice")

		// The actor's token does not work in the target's session...
		before := c.settle()
		assertForbidden(t, c, c.post(a.plugin.LogoutURL(), url.Values{loginas.CSRFField: {adminToken}}), before)
		// ...and the target's does not work after the return.
		aliceToken := c.token()
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		before = c.settle()
		r := c.post(a.plugin.LoginAsURL("bob"), url.Values{loginas.CSRFField: {aliceToken}})
		assertForbidden(t, c, r, before)
		r = c.post(a.plugin.LoginAsURL("bob"), url.Values{loginas.CSRFField: {adminToken}})
		assertForbidden(t, c, r, before)
	})
}

// A token belongs to one session: it dies when that session ends, in every
// store, and a later session of the same user, in the same browser or
// another, does not accept it. A server-side session ends when its ID goes
// (the app's login renews it); a cookie session when it is cleared.
func TestTokensDieWithTheirSession(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		type ending struct {
			name string
			end  func(c *client)
		}
		appLogout := func(path string) func(c *client) {
			return func(c *client) { require.Equal(t, http.StatusNoContent, c.post(path, nil).status) }
		}
		endings := []ending{{"the logout route", func(c *client) { require.Equal(t, http.StatusSeeOther, c.logout(nil).status) }}}
		if st.serverSide {
			endings = append(endings, ending{"the app's logout that renews the session", appLogout("/test/renew")})
		} else {
			endings = append(endings,
				ending{"the app's logout that clears the session", appLogout("/test/clear")},
				ending{"the app's logout that deletes its user key", appLogout("/test/drop-user")})
		}
		for _, c := range endings {
			t.Run(c.name, func(t *testing.T) {
				a := newApp(t, st)
				first := a.signedIn("admin")
				old := first.token()
				c.end(first)
				first.signIn("admin")
				before := first.settle()
				r := first.post(a.plugin.LoginAsURL("alice"), url.Values{loginas.CSRFField: {old}})
				assertForbidden(t, first, r, before)

				other := a.signedIn("admin")
				r = other.post(a.plugin.LoginAsURL("alice"), url.Values{loginas.CSRFField: {old}})
				assert.Equal(t, http.StatusForbidden, r.status, "another session of the same admin refuses it")
				assert.Equal(t, "admin", other.state().user())
			})
		}
	})
}

// The debug log tells apart the reasons a token check fails, so that a
// developer sees what to fix.
func TestTokenProblemsAreToldApart(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	a := newApp(t, cookieStore, withOptions(func(o *loginas.Options) { o.Logger = logs.logger() }))
	anonymous := a.client()
	anonymous.post(a.plugin.LoginAsURL("alice"), nil)
	assert.Contains(t, logs.String(), "nobody is signed in (no value under Options.SessionKey")
	c := a.signedIn("admin")
	c.post(a.plugin.LoginAsURL("alice"), nil)
	assert.Contains(t, logs.String(), "no CSRF token: send the field loginas_csrf")
	c.token()
	c.post(a.plugin.LoginAsURL("alice"), url.Values{loginas.CSRFField: {"AAAA"}})
	assert.Contains(t, logs.String(), "CSRF token wrong")
}

func TestExternalCSRFTurnsTheTokenOff(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.ExternalCSRF = true }))
		c := a.signedIn("admin")
		assert.Empty(t, c.token(), "no token to hand out")
		r := c.post(a.plugin.LoginAsURL("alice"), nil)
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		assert.Equal(t, "alice", c.state().user())
		r = c.post(a.plugin.LogoutURL(), nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "admin", c.state().user())

		// The cross-origin check stays on.
		before := c.settle()
		assertForbidden(t, c, c.post(a.plugin.LoginAsURL("alice"), nil, header("Sec-Fetch-Site", "cross-site")), before)
	})
}

func TestCustomErrorHandlerSeesRefusals(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.ErrorHandler = func(c *gin.Context, status int, err error) {
				var r *loginas.Refusal
				cause := "none"
				if errors.As(err, &r) {
					cause = string(r.Cause)
				}
				c.String(status, "custom %d %s", status, cause)
			}
		}))
		c := a.signedIn("admin")
		r := c.post(a.plugin.LoginAsURL("alice"), nil)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "custom 403 forbidden", r.body)
	})
}

// A forged or unreadable request is a refusal like any other: the audit
// trail records it, cause "forbidden" or "bad_request".
func TestForgedRequestsAreAudited(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.post(a.plugin.LoginAsURL("alice"), nil)
		c.switchTo("alice", nil, header("Sec-Fetch-Site", "cross-site"))
		forbidden := a.audit.matching(loginas.ActionDenied, loginas.CauseForbidden)
		assert.Len(t, forbidden, 2, "missing token and cross-site request: %+v", a.audit.Events())
		for _, e := range forbidden {
			assert.Equal(t, "/admin/loginas/alice", e.Path)
			assert.Equal(t, "127.0.0.1", e.ClientIP)
		}
		c.doRaw(http.MethodPost, a.plugin.LoginAsURL("alice"), "x=%zz",
			header("Content-Type", "application/x-www-form-urlencoded"))
		assert.Len(t, a.audit.matching(loginas.ActionDenied, loginas.CauseBadRequest), 1)
	})
}

// A refusal of an impersonated session's request, even one refused before
// the route's own checks (a wrong token), is audited with both people.
func TestImpersonatedRefusalNamesBothPeople(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore)
	c := a.signedIn("admin")
	c.mustSwitch("alice")
	r := c.post(a.plugin.LogoutURL(), url.Values{loginas.CSRFField: {"not-a-token"}}, jsonAccept)
	require.Equal(t, http.StatusForbidden, r.status)
	e := a.audit.only(t, loginas.ActionDenied, loginas.CauseForbidden)
	assert.Equal(t, "admin", e.ActorID)
	assert.Equal(t, "alice", e.TargetID)
	assert.NotEmpty(t, e.ImpersonationID)
	assert.True(t, c.state().Impersonated, "the refused return changed nothing")
}
