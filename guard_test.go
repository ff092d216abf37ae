package loginas_test

import (
	"net/http"
	"net/url"
	"testing"

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
		c := app.signedIn("admin")

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
