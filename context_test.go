package loginas_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// An app's own logout that deletes only its user key leaves the record in
// the session. The next request removes it and ends the impersonation, so
// that the next sign-in on this browser is never taken for the old
// impersonation, and the logout route never turns it into the actor.
func TestRecordWithoutUserIsCleaned(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.client()
		c.signIn("admin")
		c.mustSwitch("alice")
		require.Equal(t, http.StatusNoContent, c.post("/test/drop-user", nil).status)

		s := c.state()
		assert.Nil(t, s.User)
		assert.False(t, s.HasRecord, "the record goes with the user")
		e := a.audit.only(t, loginas.ActionEnd, loginas.CauseLogout)
		assert.Equal(t, "admin", e.ActorID)

		// Alice signs in on the same browser, through the app's own login
		// that keeps the session: she is herself, not an impersonation.
		c.signIn("alice")
		s = c.state()
		assert.Equal(t, "alice", s.user())
		assert.False(t, s.Impersonated)
		r := c.logout(nil, jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Nil(t, r.jsonBody(t)["user"], "the logout signs alice out; it never makes her the admin")
		assert.Nil(t, c.state().User)
	})
}

// FindUser may find a user under another spelling of the ID, as SQL
// integer columns do; the plugin uses the ID it returns everywhere.
func TestAliasesAreOneIdentity(t *testing.T) {
	t.Parallel()
	// IDs are integers, and any spelling ParseFloat reads finds the user.
	users := map[int]loginas.User{
		1: {ID: "1", Name: "Admin", Superuser: true, Active: true},
		5: {ID: "5", Name: "Eve", Active: true},
		6: {ID: "6", Name: "Frank", Active: true},
	}
	find := func(_ context.Context, id string) (loginas.User, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(id), 64)
		if u, ok := users[int(f)]; ok && err == nil && f == float64(int(f)) {
			return u, nil
		}
		return loginas.User{}, loginas.ErrUserNotFound
	}
	refuseFive := func(_ *gin.Context, _, target loginas.User) error {
		if target.ID == "5" {
			return loginas.Refuse("user 5 is protected")
		}
		return nil
	}
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.FindUser = find
			o.CanLoginAs = refuseFive
		}))
		for _, alias := range []string{"01", "+1", "1.0", "1e0", "0001"} {
			c := a.client()
			c.signIn("1")
			r := c.switchTo(alias, nil, jsonAccept)
			assert.Equalf(t, http.StatusUnprocessableEntity, r.status, "logging in as oneself through %q: %s", alias, r.body)
		}
		for _, alias := range []string{"05", "+5", "5.0", "5e0"} {
			c := a.client()
			c.signIn("1")
			r := c.switchTo(alias, nil, jsonAccept)
			assert.Equalf(t, http.StatusForbidden, r.status, "the hook that refuses 5 refuses %q: %s", alias, r.body)
		}
		for _, alias := range []string{" 6", "6 ", "6/", "..", strings.Repeat("6", 200)} {
			c := a.client()
			c.signIn("1")
			r := c.switchTo(alias, nil, jsonAccept)
			assert.Lessf(t, r.status, 500, "alias %q: %s", alias, r.body)
		}

		c := a.client()
		c.signIn("01") // the app's own login kept an alias
		r := c.switchTo("06", nil)
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		s := c.state()
		assert.Equal(t, "6", s.user(), "the session holds the canonical ID")
		require.NotNil(t, s.Current)
		assert.Equal(t, "1", s.Current.ActorID)
		assert.Equal(t, "6", s.Current.TargetID)
		page := c.get("/test/state")
		assert.Equal(t, "6", page.header.Get(loginas.HeaderImpersonatedUser))
		assert.Equal(t, "1", page.header.Get(loginas.HeaderImpersonator))
		start := a.audit.only(t, loginas.ActionStart, "")
		assert.Equal(t, "1", start.ActorID)
		assert.Equal(t, "6", start.TargetID)
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, "1", c.state().user(), "the actor comes back under the canonical ID")
	})
}

// ReadOnly refuses changes while impersonating, but never the ways back:
// the plugin's logout route, wherever it is mounted, and the app's own
// logout behind ReturnRoute.
func TestReadOnlyNeverTrapsTheActor(t *testing.T) {
	t.Parallel()
	readOnly := withOptions(func(o *loginas.Options) { o.ReadOnly = true })
	eachStore(t, func(t *testing.T, st storeKind) {
		t.Run("the app's own logout calls Restore", func(t *testing.T) {
			a := newApp(t, st, readOnly, withRoutes(appLogout))
			c := a.client()
			c.signIn("admin")
			c.mustSwitch("alice")
			assert.Equal(t, http.StatusForbidden, c.post("/test/set", url.Values{"key": {"x"}, "value": {"1"}}).status)
			assert.Equal(t, http.StatusForbidden, c.post("/logout", nil).status, "ReturnRoute wants the token")
			r := c.post("/logout", c.withToken(nil))
			require.Equal(t, http.StatusSeeOther, r.status, r.body)
			assert.Equal(t, "admin", c.state().user())
		})
		t.Run("handlers mounted by hand", func(t *testing.T) {
			gin.SetMode(gin.TestMode)
			audit := &auditLog{}
			opts := baseOptions(newUserStore(), audit, newTestClock())
			opts.ReadOnly = true
			p, err := loginas.New(opts)
			require.NoError(t, err)
			r := gin.New()
			r.Use(sessions.Sessions(sessionName, st.make()), p.Middleware())
			r.POST("/support/as/:id", p.LoginAsHandler())
			r.POST("/support/back", p.LogoutHandler())
			addTestRoutes(r, p)
			a := &testApp{t: t, store: st, engine: r, plugin: p, audit: audit, server: httptest.NewServer(r)}
			t.Cleanup(a.server.Close)
			c := a.client()
			c.signIn("admin")
			require.Equal(t, http.StatusSeeOther, c.post("/support/as/alice", c.withToken(nil)).status)
			require.True(t, c.state().Impersonated)
			res := c.post("/support/back", c.withToken(nil))
			require.Equal(t, http.StatusSeeOther, res.status, res.body)
			assert.Equal(t, "admin", c.state().user())
		})
	})
}
