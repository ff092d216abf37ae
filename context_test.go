package loginas_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

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
		c := a.signedIn("admin")
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
			c := a.signedIn("1")
			r := c.switchTo(alias, nil, jsonAccept)
			assert.Equalf(t, http.StatusUnprocessableEntity, r.status, "logging in as oneself through %q: %s", alias, r.body)
		}
		for _, alias := range []string{"05", "+5", "5.0", "5e0"} {
			c := a.signedIn("1")
			r := c.switchTo(alias, nil, jsonAccept)
			assert.Equalf(t, http.StatusForbidden, r.status, "the hook that refuses 5 refuses %q: %s", alias, r.body)
		}
		for _, alias := range []string{" 6", "6 ", "6/", "..", strings.Repeat("6", 200)} {
			c := a.signedIn("1")
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
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			assert.Equal(t, http.StatusForbidden, c.post("/test/set", url.Values{"key": {"x"}, "value": {"1"}}).status)
			assert.Equal(t, http.StatusForbidden, c.post("/logout", nil).status, "ReturnRoute wants the token")
			r := c.post("/logout", c.withToken(nil))
			require.Equal(t, http.StatusSeeOther, r.status, r.body)
			assert.Equal(t, "admin", c.state().user())
		})
		t.Run("handlers mounted by hand", func(t *testing.T) {
			a := newApp(t, st, readOnly, mountedByHand(func(r *gin.Engine, p *loginas.Plugin) {
				r.POST("/support/as/:id", p.LoginAsHandler())
				r.POST("/support/back", p.LogoutHandler())
			}))
			c := a.signedIn("admin")
			require.Equal(t, http.StatusSeeOther, c.post("/support/as/alice", c.withToken(nil)).status)
			require.True(t, c.state().Impersonated)
			res := c.post("/support/back", c.withToken(nil))
			require.Equal(t, http.StatusSeeOther, res.status, res.body)
			assert.Equal(t, "admin", c.state().user())
		})
	})
}

func TestReadOnlyImpersonation(t *testing.T) {
	eachStore(t, func(t *testing.T, st storeKind) {
		app := newApp(t, st, withRoutes(guardedRoutes), withOptions(func(o *loginas.Options) { o.ReadOnly = true }))
		c := app.signedIn("admin")
		assert.Equal(t, http.StatusOK, c.post("/page", nil).status, "the actor may write as themselves")

		c.mustSwitch("alice")
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
			r := c.do(m, "/page", nil, nil)
			assert.NotEqualf(t, http.StatusForbidden, r.status, "%s is safe", m)
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			r := c.do(m, "/page", url.Values{}, nil)
			assert.Equalf(t, http.StatusForbidden, r.status, "%s is refused", m)
			assert.NotContains(t, r.body, "saved")
		}
		assert.Len(t, app.audit.matching(loginas.ActionDenied, loginas.CauseReadOnly), 4)

		r := c.logout(nil)
		require.Equal(t, http.StatusSeeOther, r.status, "the logout route stays open: %s", r.body)
		assert.Equal(t, "admin", c.state().user())
		assert.Equal(t, http.StatusOK, c.post("/page", nil).status)
	})
}

func TestContextWhileImpersonating(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")

		plain := c.get("/test/state")
		assert.Empty(t, plain.header.Values(loginas.HeaderImpersonatedUser))
		assert.Empty(t, plain.header.Values(loginas.HeaderImpersonator))
		before := c.state()
		assert.False(t, before.Impersonated)
		assert.False(t, before.Helper)
		assert.Nil(t, before.Current)
		assert.Nil(t, before.FromContext)

		start := a.clock.Now()
		c.mustSwitch("alice")
		r := c.get("/test/state")
		assert.Equal(t, "alice", r.header.Get(loginas.HeaderImpersonatedUser))
		assert.Equal(t, "admin", r.header.Get(loginas.HeaderImpersonator))
		st2 := c.state()
		assert.True(t, st2.Impersonated)
		assert.True(t, st2.Helper)
		require.NotNil(t, st2.Current)
		require.NotNil(t, st2.FromContext)
		assert.Equal(t, *st2.Current, *st2.FromContext)
		assert.Equal(t, "admin", st2.Current.ActorID)
		assert.Equal(t, "Admin", st2.Current.ActorName)
		assert.Equal(t, "alice", st2.Current.TargetID)
		assert.Equal(t, "Alice", st2.Current.TargetName)
		assert.True(t, st2.Current.Started.Equal(start.Truncate(time.Second)), "started %s", st2.Current.Started)
		assert.Len(t, st2.Current.ID, 32)
		assert.Equal(t, a.audit.only(t, loginas.ActionStart, "").ImpersonationID, st2.Current.ID)

		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		after := c.get("/test/state")
		assert.Empty(t, after.header.Values(loginas.HeaderImpersonatedUser))
		assert.Empty(t, after.header.Values(loginas.HeaderImpersonator))
		assert.False(t, c.state().Impersonated)
	})
}

func TestContextForAnonymousVisitor(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore)
	c := a.client()
	r := c.get("/test/state")
	require.Equal(t, http.StatusOK, r.status)
	st := c.state()
	assert.Nil(t, st.User)
	assert.False(t, st.Impersonated)
	assert.Nil(t, st.Current)
	assert.Empty(t, r.header.Values(loginas.HeaderImpersonator))
}

func TestContextHelpersWithoutMiddleware(t *testing.T) {
	t.Parallel()
	c, _ := gin.CreateTestContext(nil)
	c.Request, _ = http.NewRequest(http.MethodGet, "/", nil)
	assert.False(t, loginas.IsImpersonated(c))
	_, ok := loginas.Current(c)
	assert.False(t, ok)
	_, ok = loginas.FromContext(context.Background())
	assert.False(t, ok)
}

func TestTimeLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	imp := loginas.Impersonation{Deadline: now.Add(10 * time.Minute)}
	assert.Equal(t, 10*time.Minute, imp.TimeLeft(now))
	assert.Equal(t, time.Duration(0), imp.TimeLeft(now.Add(time.Hour)))
}

// The headers describe the session a response leaves behind: the answer
// that ends an impersonation does not carry them, the one that starts it
// does not either (the page it leads to will).
func TestImpersonationHeadersOnlyOnImpersonatedResponses(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withRoutes(appLogout))
		c := a.signedIn("admin")
		noHeaders := func(what string, r *reply) {
			t.Helper()
			assert.Emptyf(t, r.header.Values(loginas.HeaderImpersonatedUser), "%s: %s", what, loginas.HeaderImpersonatedUser)
			assert.Emptyf(t, r.header.Values(loginas.HeaderImpersonator), "%s: %s", what, loginas.HeaderImpersonator)
		}
		noHeaders("switch", c.switchTo("alice", nil))
		noHeaders("return through the logout route", c.logout(nil))
		c.mustSwitch("alice")
		noHeaders("return through Restore", c.post("/logout", c.withToken(nil)))
		c.mustSwitch("alice")
		a.clock.advance(2 * time.Hour)
		noHeaders("expiry", c.get("/test/state"))
	})
}
