package loginas_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// sessionCookies returns the Set-Cookie headers of a reply for the app's
// session.
func sessionCookies(r *reply) []*http.Cookie {
	var out []*http.Cookie
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == sessionName {
			out = append(out, c)
		}
	}
	return out
}

func TestSwitchRenewsTheSessionID(t *testing.T) {
	t.Parallel()
	a := newApp(t, memStore)
	c := a.signedIn("admin")
	adminSession := c.state()
	require.NotEmpty(t, adminSession.SessionID)
	adminCookies := c.cookies()

	c.mustSwitch("alice")
	impSession := c.state()
	assert.NotEqual(t, adminSession.SessionID, impSession.SessionID, "the switch gives a new session ID")

	// A copy of the pre-switch cookie is worth nothing now.
	replay := a.clientWith(adminCookies)
	st := replay.state()
	assert.Nil(t, st.User, "the old session was deleted from the store")
	assert.False(t, st.Impersonated)
	r := replay.switchTo("bob", nil)
	assert.Equal(t, http.StatusForbidden, r.status, "the replayed cookie cannot switch either")

	impCookies := c.cookies()
	require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
	back := c.state()
	assert.Equal(t, "admin", back.user())
	assert.NotEqual(t, impSession.SessionID, back.SessionID, "the return gives a new session ID")
	assert.NotEqual(t, adminSession.SessionID, back.SessionID)

	// A copy of the impersonated cookie is worth nothing after the return:
	// neither alice nor admin.
	replay = a.clientWith(impCookies)
	st = replay.state()
	assert.Nil(t, st.User)
	assert.False(t, st.Impersonated)
}

func TestPlainLogoutDeletesTheServerSession(t *testing.T) {
	t.Parallel()
	a := newApp(t, memStore)
	c := a.signedIn("alice")
	old := c.cookies()
	require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
	assert.Nil(t, a.clientWith(old).state().User, "the logged-out session cannot be replayed")
}

// The app's own login or logout that renews an impersonated session ends
// the impersonation: audited once, and a copy of the old cookie cannot
// resume it.
func TestRenewSessionEndsTheImpersonation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		copied := c.cookies()
		require.Equal(t, http.StatusNoContent, c.post("/test/renew", nil).status)
		e := a.audit.only(t, loginas.ActionEnd, loginas.CauseLogout)
		assert.Equal(t, "admin", e.ActorID)
		assert.Equal(t, "alice", e.TargetID)
		assert.Nil(t, c.state().User)
		replay := a.clientWith(copied).state()
		assert.False(t, replay.Impersonated, "a copy of the impersonated session is refused")
		assert.Nil(t, replay.User)
	})
}

func TestActorSessionDataDoesNotSurvive(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.setValue("extra", "admin's private data", "")
		c.setValue("cart", "3 items", "")
		require.Equal(t, "admin's private data", c.state().Extra)

		c.mustSwitch("alice")
		s := c.state()
		assert.Nil(t, s.Extra, "the actor's data is not in the target's session")
		assert.Nil(t, c.sessionValue("cart"))

		c.setValue("extra", "alice's data", "")
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		s = c.state()
		assert.Equal(t, "admin", s.user())
		assert.Nil(t, s.Extra, "nothing of the target's session comes back either")
		assert.Nil(t, c.sessionValue("cart"), "the actor starts over with a fresh session")
	})
}

func TestFlashAfterSwitchAndReturn(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		assert.Equal(t, []string{msgSwitched}, c.flashes())
		assert.Empty(t, c.flashes(), "a flash shows once")
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, []string{msgReturned}, c.flashes())
		assert.Empty(t, c.flashes())
	})
}

func TestCustomFlashKey(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.FlashKey = "notices" }))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		assert.Empty(t, c.flashes(), "nothing under the default key")
		got, ok := c.sessionValue("notices").([]any)
		require.True(t, ok, "flash stored under the custom key")
		assert.Equal(t, []any{msgSwitched}, got)
	})
}

func TestSwitchSendsOneSessionCookieWithTheAppsAttributes(t *testing.T) {
	t.Parallel()
	opts := sessions.Options{Path: "/", MaxAge: 7200, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withSessionOptions(opts))
		c := a.signedIn("admin")
		check := func(what string, r *reply) {
			t.Helper()
			cookies := sessionCookies(r)
			require.Lenf(t, cookies, 1, "%s sends exactly one session cookie: %q", what, r.header.Values("Set-Cookie"))
			k := cookies[0]
			assert.Equal(t, "/", k.Path, what)
			assert.Equal(t, 7200, k.MaxAge, what)
			assert.True(t, k.HttpOnly, what)
			assert.Equal(t, http.SameSiteLaxMode, k.SameSite, what)
			assert.NotEmpty(t, k.Value, what)
		}
		r := c.switchTo("alice", nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		check("the switch", r)
		r = c.logout(nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		check("the return", r)
		r = c.logout(nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		check("a plain logout", r)
	})
}

func TestCookieStoreSessionStaysSmall(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore)
	c := a.signedIn("admin")
	r := c.switchTo("alice", nil)
	require.Equal(t, http.StatusSeeOther, r.status)
	cookies := sessionCookies(r)
	require.Len(t, cookies, 1)
	assert.Less(t, len(cookies[0].String()), 4096, "the cookie fits a browser's limit")
}

func TestRefusalKeepsTheSession(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.setValue("extra", "kept", "")
		before := c.state()
		for _, target := range []string{"root", "carol", "admin", "nobody"} {
			r := c.switchTo(target, nil)
			require.Equal(t, http.StatusSeeOther, r.status)
		}
		after := c.state()
		assert.Equal(t, before.SessionID, after.SessionID)
		assert.Equal(t, "admin", after.user())
		assert.Equal(t, "kept", after.Extra)
		assert.False(t, after.HasRecord)
		assert.Len(t, c.flashes(), 4)
	})
}

func TestAnonymousRequestsDoNotWriteTheSession(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.client()
		r := c.get("/test/state")
		assert.Equal(t, http.StatusOK, r.status)
		assert.Empty(t, r.header.Values("Set-Cookie"), "no cookie for a visitor who is not signed in")
	})
}

func TestSignedInRequestsLeaveTheSessionAlone(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("bob")
		require.NotEmpty(t, c.token(), "a signed-in session has a token without storing anything")
		for i := range 2 {
			r := c.get("/test/state")
			assert.Emptyf(t, sessionCookies(r), "request %d wrote the session", i+1)
		}
	})
}

func TestMissingSessionsMiddlewareIsAClearError(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	_, err := loginas.Register(r, validOptions())
	require.NoError(t, err)
	r.GET("/page", func(c *gin.Context) { c.String(http.StatusOK, "page") })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	res, err := (&http.Client{Transport: newTransport(t)}).Get(srv.URL + "/page")
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
}
