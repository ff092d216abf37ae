package loginas_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// guardedRoutes adds a guarded group and an unguarded page.
func guardedRoutes(r *gin.Engine, p *loginas.Plugin) {
	account := r.Group("/account", p.Guard())
	account.GET("/password", func(c *gin.Context) { c.String(http.StatusOK, "password form") })
	account.POST("/password", func(c *gin.Context) { c.String(http.StatusOK, "password changed") })
	r.GET("/page", func(c *gin.Context) { c.String(http.StatusOK, "page") })
	r.POST("/page", func(c *gin.Context) { c.String(http.StatusOK, "saved") })
}

func TestGuardRefusesOnlyImpersonatedSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, st storeKind) {
		app := newApp(t, st, withRoutes(guardedRoutes))
		c := app.client()
		c.signIn("admin")

		r := c.get("/account/password")
		require.Equal(t, http.StatusOK, r.status, "the actor's own session passes the guard")

		c.mustSwitch("alice")
		for _, tc := range []struct {
			name   string
			method string
			h      http.Header
		}{
			{"browser GET", http.MethodGet, nil},
			{"browser POST", http.MethodPost, nil},
			{"JSON client", http.MethodGet, jsonAccept},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var form url.Values
				if tc.method == http.MethodPost {
					form = url.Values{}
				}
				r := c.do(tc.method, "/account/password", form, tc.h)
				assert.Equal(t, http.StatusForbidden, r.status)
				assert.NotContains(t, r.body, "password")
				assert.Contains(t, r.body, "not available while you are signed in as another user")
			})
		}
		assert.Len(t, app.audit.matching(loginas.ActionDenied, loginas.CauseGuarded), 3)
		e := app.audit.matching(loginas.ActionDenied, loginas.CauseGuarded)[0]
		assert.Equal(t, "admin", e.ActorID)
		assert.Equal(t, "alice", e.TargetID)
		assert.NotEmpty(t, e.ImpersonationID)
		assert.Equal(t, "/account/password", e.Path)

		assert.Equal(t, http.StatusOK, c.get("/page").status, "unguarded pages still work")
		assert.Equal(t, "alice", c.state().user(), "a guarded refusal does not change the session")

		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, http.StatusOK, c.get("/account/password").status, "after return the guard lets the actor through")
	})
}

func TestReadOnlyImpersonation(t *testing.T) {
	eachStore(t, func(t *testing.T, st storeKind) {
		app := newApp(t, st, withRoutes(guardedRoutes), withOptions(func(o *loginas.Options) { o.ReadOnly = true }))
		c := app.client()
		c.signIn("admin")
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

func TestEndAllReachesEveryInstance(t *testing.T) {
	// Two instances share one user table and one Store, as two servers
	// behind a load balancer share a database.
	users := newUserStore()
	store := loginas.NewMemoryStore()
	shared := withOptions(func(o *loginas.Options) { o.Store = store })
	a := newApp(t, memStore, withUsers(users), shared)
	b := newApp(t, cookieStore, withUsers(users), shared)

	onA, onB, otherActor := a.client(), b.client(), b.client()
	onA.signIn("admin")
	onA.mustSwitch("alice")
	onB.signIn("admin")
	onB.mustSwitch("bob")
	otherActor.signIn("root")
	otherActor.mustSwitch("bob")

	a.clock.advance(time.Second)
	b.clock.advance(time.Second)
	require.NoError(t, a.plugin.EndAll(t.Context(), "admin"))

	for name, c := range map[string]*client{"instance A": onA, "instance B": onB} {
		st := c.state()
		assert.Emptyf(t, st.user(), "%s: signed out", name)
		assert.Falsef(t, st.Impersonated, "%s", name)
		assert.Containsf(t, c.flashes(), "Your session as "+map[string]string{"instance A": "Alice", "instance B": "Bob"}[name]+" was ended by an administrator. Please sign in again.", "%s", name)
	}
	// EndAll records both ends where it is called; the instance that signs
	// a session out later adds nothing.
	assert.Len(t, a.audit.matching(loginas.ActionEnd, loginas.CauseEnded), 2)
	assert.Empty(t, b.audit.matching(loginas.ActionEnd, ""))
	assert.Equal(t, "bob", otherActor.state().user(), "another actor's impersonation goes on")

	// New impersonations after EndAll work again.
	a.clock.advance(time.Second)
	onA.signIn("admin")
	onA.mustSwitch("alice")
	assert.True(t, onA.state().Impersonated)
}

func TestMaxDurationFor(t *testing.T) {
	app := newApp(t, cookieStore, withOptions(func(o *loginas.Options) {
		o.CanImpersonate = func(_ *gin.Context, actor loginas.User) bool { return actor.Superuser || actor.ID == "support" }
		o.MaxDurationFor = func(_ *gin.Context, actor loginas.User) time.Duration {
			if actor.ID == "support" {
				return 10 * time.Minute
			}
			return 0 // the default
		}
	}))
	for _, tc := range []struct {
		actor string
		limit time.Duration
	}{
		{"support", 10 * time.Minute},
		{"admin", loginas.DefaultMaxDuration},
	} {
		t.Run(tc.actor, func(t *testing.T) {
			c := app.client()
			c.signIn(tc.actor)
			start := app.clock.Now()
			c.mustSwitch("alice")
			cur := c.state().Current
			require.NotNil(t, cur)
			assert.Equal(t, start.Add(tc.limit).UnixMilli(), cur.Deadline.UnixMilli())
		})
	}
}

func TestJSONClients(t *testing.T) {
	eachStore(t, func(t *testing.T, st storeKind) {
		app := newApp(t, st)
		c := app.client()
		c.signIn("admin")

		r := c.post(app.plugin.LoginAsURL("alice"), url.Values{}, header("Accept", "application/json", loginas.CSRFHeader, c.token()))
		require.Equal(t, http.StatusOK, r.status, r.body)
		body := r.jsonBody(t)
		assert.Equal(t, true, body["impersonating"])
		assert.Equal(t, map[string]any{"id": "alice", "name": "Alice"}, body["user"])
		assert.Equal(t, map[string]any{"id": "admin", "name": "Admin"}, body["impersonator"])
		deadline, err := time.Parse(time.RFC3339, body["deadline"].(string))
		require.NoError(t, err)
		assert.WithinDuration(t, app.clock.Now().Add(time.Hour), deadline, time.Second)

		page := c.get("/test/state")
		assert.Equal(t, "alice", page.header.Get(loginas.HeaderImpersonatedUser))
		assert.Equal(t, "admin", page.header.Get(loginas.HeaderImpersonator))

		r = c.post(app.plugin.LoginAsURL("bob"), url.Values{}, header("Accept", "application/json", loginas.CSRFHeader, c.token()))
		assert.Equal(t, http.StatusConflict, r.status)
		assert.Equal(t, "You are already signed in as another user. Return to your own account first.", r.jsonBody(t)["error"])

		r = c.post(app.plugin.LogoutURL(), url.Values{}, header("Accept", "application/json", loginas.CSRFHeader, c.token()))
		require.Equal(t, http.StatusOK, r.status, r.body)
		body = r.jsonBody(t)
		assert.Equal(t, false, body["impersonating"])
		assert.Equal(t, map[string]any{"id": "admin", "name": "Admin"}, body["user"])
		assert.Empty(t, r.header.Get(loginas.HeaderImpersonatedUser), "the answer to the return is no longer impersonated")
		assert.Empty(t, c.get("/test/state").header.Get(loginas.HeaderImpersonator))

		r = c.post(app.plugin.LogoutURL(), url.Values{}, header("Accept", "application/json"))
		assert.Equal(t, http.StatusForbidden, r.status, "a JSON client without the token is refused")
		assert.Contains(t, r.jsonBody(t)["error"], "Forbidden")
	})
}
