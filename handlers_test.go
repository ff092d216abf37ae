package loginas_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

const (
	msgNotPermitted = "You do not have permission to do that."
	msgSwitched     = "You are now signed in as Alice. Use “Return to my account” to go back."
	msgReturned     = "Welcome back, Admin: you are signed in as yourself again."
)

func TestSuperuserLogsInAsUser(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		r := c.switchTo("alice", nil, header("User-Agent", "test-browser/1.0"))
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		assert.Equal(t, "/", r.location())
		s := c.state()
		assert.Equal(t, "alice", s.user())
		assert.True(t, s.Impersonated)
		assert.Equal(t, []string{msgSwitched}, c.flashes())

		e := a.audit.only(t, loginas.ActionStart, "")
		assert.Equal(t, "admin", e.ActorID)
		assert.Equal(t, "Admin", e.ActorName)
		assert.Equal(t, "alice", e.TargetID)
		assert.Equal(t, "Alice", e.TargetName)
		assert.Equal(t, "127.0.0.1", e.ClientIP)
		assert.Equal(t, "test-browser/1.0", e.UserAgent)
		assert.Equal(t, http.MethodPost, e.Method)
		assert.Equal(t, "/admin/loginas/alice", e.Path)
		assert.True(t, e.Time.Equal(a.clock.Now()))
		assert.Len(t, e.ImpersonationID, 32)
		assert.Empty(t, e.Reason)
		assert.Len(t, a.audit.Events(), 1, "a switch is one event")
	})
}

func TestNonSuperuserIsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		for _, actor := range []string{"staff", "alice"} {
			t.Run(actor, func(t *testing.T) {
				c := a.signedIn(actor)
				before := c.state()
				r := c.switchTo("bob", nil)
				assert.Equal(t, http.StatusSeeOther, r.status)
				assert.Equal(t, "/", r.location())
				assert.Equal(t, []string{msgNotPermitted}, c.flashes())
				after := c.state()
				assert.Equal(t, actor, after.user())
				assert.False(t, after.Impersonated)
				assert.Equal(t, before.SessionID, after.SessionID, "a refusal keeps the session")
			})
		}
		for _, e := range a.audit.matching(loginas.ActionDenied, "") {
			assert.Equal(t, loginas.CauseNotPermitted, e.Cause)
			assert.Empty(t, e.TargetID, "a refused actor's event does not name the target")
		}
		assert.Len(t, a.audit.matching(loginas.ActionDenied, loginas.CauseNotPermitted), 2)
	})
}

func TestAnonymousIsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		t.Run("with the plugin's token", func(t *testing.T) {
			a := newApp(t, st)
			c := a.client()
			assert.Empty(t, c.token(), "an anonymous visitor has no token")
			r := c.post(a.plugin.LoginAsURL("alice"), url.Values{})
			assert.Equal(t, http.StatusForbidden, r.status)
			assert.Empty(t, r.location())
			assert.Nil(t, c.state().User)
		})
		t.Run("with the app's own CSRF protection", func(t *testing.T) {
			a := newApp(t, st, withOptions(func(o *loginas.Options) { o.ExternalCSRF = true }))
			c := a.client()
			r := c.post(a.plugin.LoginAsURL("alice"), nil)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Contains(t, r.body, "Please sign in first.")
			r = c.post(a.plugin.LoginAsURL("alice"), nil, jsonAccept)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "Please sign in first.", r.jsonBody(t)["error"])
			assert.Nil(t, c.state().User)
			assert.Empty(t, a.audit.Events(), "requests without a signed-in user are not audited")
		})
		t.Run("with a login page", func(t *testing.T) {
			a := newApp(t, st, withOptions(func(o *loginas.Options) {
				o.ExternalCSRF = true
				o.LoginURL = "/login"
			}))
			c := a.client()
			r := c.post(a.plugin.LoginAsURL("alice"), nil)
			assert.Equal(t, http.StatusSeeOther, r.status)
			assert.Equal(t, "/login", r.location())
			r = c.post(a.plugin.LoginAsURL("alice"), nil, jsonAccept)
			assert.Equal(t, http.StatusUnauthorized, r.status, "a script gets the status, not the login page")
		})
		t.Run("signed in as a user who no longer exists", func(t *testing.T) {
			a := newApp(t, st)
			c := a.signedIn("ghost")
			r := c.switchTo("alice", nil, jsonAccept)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "ghost", c.state().user())
		})
	})
}

func TestOtherMethodsAre405(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		before := c.state()
		for _, path := range []string{a.plugin.LoginAsURL("alice"), a.plugin.LogoutURL()} {
			// "P", "OS" and "POS" are parts of POST: a method is compared whole.
			for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace, "P", "OS", "POS"} {
				t.Run(m+" "+path, func(t *testing.T) {
					r := c.do(m, path, c.withToken(nil), nil)
					assert.Equal(t, http.StatusMethodNotAllowed, r.status)
					assert.Equal(t, "POST", r.header.Get("Allow"))
				})
			}
		}
		after := c.state()
		assert.Equal(t, "admin", after.user())
		assert.False(t, after.Impersonated)
		assert.Equal(t, before.SessionID, after.SessionID)
		assert.Empty(t, a.audit.Events())

		// The person's routes and the JSON lists answer 405 for the methods
		// they do not take; the consent route is not there at all without
		// RequireConsent.
		for path, allow := range map[string]string{"/admin/loginas/access/end": "POST", "/admin/loginas/access": "GET, POST", "/admin/loginas/live": "GET, POST"} {
			for _, m := range []string{http.MethodPut, "GE"} {
				r := c.do(m, path, nil, nil)
				assert.Equalf(t, http.StatusMethodNotAllowed, r.status, "%s %s", m, path)
				assert.Equalf(t, allow, r.header.Get("Allow"), "%s %s", m, path)
			}
		}
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			assert.Equalf(t, http.StatusNotFound, c.do(m, "/admin/loginas/access/consent", c.withToken(nil), nil).status, "%s to the consent route without RequireConsent", m)
		}

		// A GET to the logout route does not end an impersonation either.
		c.mustSwitch("alice")
		assert.Equal(t, http.StatusMethodNotAllowed, c.get(a.plugin.LogoutURL()).status)
		assert.True(t, c.state().Impersonated)
	})
}

func TestMissingTokenIs403(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		before := c.state()
		r := c.post(a.plugin.LoginAsURL("alice"), nil)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Empty(t, r.location())
		assert.Empty(t, c.flashes())
		after := c.state()
		assert.Equal(t, "admin", after.user())
		assert.Equal(t, before.SessionID, after.SessionID)
	})
}

func TestCustomPermissionHooks(t *testing.T) {
	t.Parallel()
	// Support staff may log in as plain users only; the app explains why
	// when it refuses.
	hooks := func(o *loginas.Options) {
		o.CanImpersonate = func(_ *gin.Context, actor loginas.User) bool {
			return actor.Data == "support" || actor.Superuser
		}
		o.CanLoginAs = func(_ *gin.Context, actor, target loginas.User) error {
			switch {
			case target.ID == "bob":
				return errRefused
			case target.Data == "staff":
				return loginas.Refuse("Support may only log in as customers.")
			}
			return nil
		}
	}
	cases := []struct {
		name    string
		actor   string
		target  string
		status  int // JSON status; 0 means the switch works
		message string
		cause   loginas.Cause
	}{
		{"hook allows", "support", "alice", 0, "", ""},
		{"hook refuses", "support", "bob", http.StatusForbidden, msgNotPermitted, loginas.CauseHook},
		{"hook refuses with its own message", "support", "staff", http.StatusForbidden, "Support may only log in as customers.", loginas.CauseHook},
		{"actor rule refuses", "staff", "alice", http.StatusForbidden, msgNotPermitted, loginas.CauseNotPermitted},
		{"hard rule before the hook", "support", "carol", http.StatusForbidden, "You cannot log in as a disabled user.", loginas.CauseInactive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st, withOptions(hooks))
				c := a.signedIn(tc.actor)
				if tc.status == 0 {
					c.mustSwitch(tc.target)
					return
				}
				r := c.switchTo(tc.target, nil, jsonAccept)
				assert.Equal(t, tc.status, r.status)
				assert.Equal(t, tc.message, r.jsonBody(t)["error"])

				r = c.switchTo(tc.target, nil)
				assert.Equal(t, http.StatusSeeOther, r.status)
				assert.Equal(t, []string{tc.message}, c.flashes())
				assert.Equal(t, tc.actor, c.state().user())
				denied := a.audit.matching(loginas.ActionDenied, tc.cause)
				require.Len(t, denied, 2)
				assert.Equal(t, tc.message, denied[0].Detail)
			})
		})
	}
}

func TestRedirectAfterSwitch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.RedirectURL = "/dashboard" }))
		c := a.signedIn("admin")
		assert.Equal(t, "/dashboard", c.switchTo("alice", nil).location())
	})
}

func TestReturnToOriginalUser(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		assert.Equal(t, []string{msgSwitched}, c.flashes())
		imp := c.state().Current
		require.NotNil(t, imp)

		r := c.logout(nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "/", r.location())
		s := c.state()
		assert.Equal(t, "admin", s.user())
		assert.False(t, s.Impersonated)
		assert.False(t, s.HasRecord)
		assert.Equal(t, []string{msgReturned}, c.flashes())

		end := a.audit.only(t, loginas.ActionEnd, loginas.CauseLogout)
		assert.Equal(t, imp.ID, end.ImpersonationID)
		assert.Equal(t, "admin", end.ActorID)
		assert.Equal(t, "alice", end.TargetID)

		// Back as admin, the next switch works again.
		c.mustSwitch("bob")
	})
}

func TestLogoutRedirectURL(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.LogoutRedirectURL = "/admin/users" }))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		assert.Equal(t, "/admin/users", c.logout(nil).location(), "return")
		assert.Equal(t, "/admin/users", c.logout(nil).location(), "plain logout")
		assert.Equal(t, "/admin/users", c.logout(nil).location(), "anonymous logout")
	})
}

func TestUpdateLastLoginHook(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		users := newUserStore()
		a := newApp(t, st, withUsers(users), withOptions(func(o *loginas.Options) { o.UpdateLastLogin = users.touch }))
		c := a.loginasClient(t, "admin")
		c.LoginAs(t, "alice", "")
		assert.Equal(t, 1, users.logins("alice"), "the target on a switch")
		assert.Zero(t, users.logins("admin"))
		c.Return(t)
		assert.Equal(t, 1, users.logins("admin"), "the actor on return")
		assert.Equal(t, 1, users.logins("alice"))
	})
}

// UpdateLastLogin runs once the switch or the return is made, so that a
// start that fails has no side effect; its own failure is logged and does
// not undo what was done.
func TestUpdateLastLoginFailureIsLogged(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		logs := &logBuffer{}
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.UpdateLastLogin = func(*gin.Context, loginas.User) error { return errRefused }
			o.Logger = logs.logger()
		}))
		c := a.signedIn("admin")
		r := c.switchTo("alice", nil)
		assert.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "alice", c.state().user())
		assert.Contains(t, logs.String(), "UpdateLastLogin failed")
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, "admin", c.state().user())
	})
}

func TestCustomDisplayName(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.DisplayName = func(u loginas.User) string { return strings.ToUpper(u.ID) + " (#" + u.ID + ")" }
		}))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		assert.Equal(t, []string{"You are now signed in as ALICE (#alice). Use “Return to my account” to go back."}, c.flashes())
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, []string{"Welcome back, ADMIN (#admin): you are signed in as yourself again."}, c.flashes())
		e := a.audit.only(t, loginas.ActionStart, "")
		assert.Equal(t, "ADMIN (#admin)", e.ActorName)
		assert.Equal(t, "ALICE (#alice)", e.TargetName)
	})
}

func TestReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		required bool
		form     url.Values
		ok       bool
		want     string // the reason recorded
	}{
		{"recorded", false, url.Values{"reason": {"Investigating support ticket #1234"}}, true, "Investigating support ticket #1234"},
		{"absent", false, nil, true, ""},
		{"blank", false, url.Values{"reason": {"   "}}, true, ""},
		{"trimmed", false, url.Values{"reason": {"  ticket #9 \n"}}, true, "ticket #9"},
		{"line breaks kept", false, url.Values{"reason": {"line one\r\nline two\tend"}}, true, "line one\nline two\tend"},
		{"required and missing", true, nil, false, ""},
		{"required and given", true, url.Values{"reason": {"Support ticket #5678"}}, true, "Support ticket #5678"},
		{"required and whitespace only", true, url.Values{"reason": {" \t\r\n "}}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st, withOptions(func(o *loginas.Options) { o.ReasonRequired = tc.required }))
				c := a.signedIn("admin")
				r := c.switchTo("alice", tc.form)
				require.Equal(t, http.StatusSeeOther, r.status)
				if tc.ok {
					assert.Equal(t, "alice", c.state().user())
					assert.Equal(t, tc.want, a.audit.only(t, loginas.ActionStart, "").Reason)
					return
				}
				assert.Equal(t, []string{"Please give a reason for logging in as this user."}, c.flashes())
				assert.Equal(t, "admin", c.state().user())
				assert.Empty(t, a.audit.matching(loginas.ActionStart, ""))
				a.audit.only(t, loginas.ActionDenied, loginas.CauseReasonRequired)
				r = c.switchTo("alice", tc.form, jsonAccept)
				assert.Equal(t, http.StatusUnprocessableEntity, r.status)
			})
		})
	}
}

func TestReasonWithForbiddenCharacters(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		for name, reason := range map[string]string{
			"NUL":            "ticket\x00",
			"escape":         "ticket \x1b[31mred",
			"bidi override":  "ticket \u202egnp.exe",
			"line separator": "ticket\u2028forged line",
			"invalid UTF-8":  "ticket \xff",
		} {
			t.Run(name, func(t *testing.T) {
				r := c.switchTo("alice", url.Values{"reason": {reason}}, jsonAccept)
				assert.Equal(t, http.StatusUnprocessableEntity, r.status)
				assert.Equal(t, "The reason contains characters that are not allowed.", r.jsonBody(t)["error"])
				assert.Equal(t, "admin", c.state().user())
			})
		}
		assert.Len(t, a.audit.matching(loginas.ActionDenied, loginas.CauseReasonInvalid), 5)
	})
}

// refusalCase is a switch that must be refused for a permitted actor.
type refusalCase struct {
	name    string
	target  string
	status  int
	cause   loginas.Cause
	message string
}

var refusalCases = []refusalCase{
	{"unknown user", "nobody", http.StatusNotFound, loginas.CauseNotFound, "There is no such user."},
	{"oneself", "admin", http.StatusUnprocessableEntity, loginas.CauseSelf, "You are already signed in as yourself."},
	{"disabled user", "carol", http.StatusForbidden, loginas.CauseInactive, "You cannot log in as a disabled user."},
	{"superuser", "root", http.StatusForbidden, loginas.CauseSuperuser, "You cannot log in as a superuser."},
	{"malformed ID", "a%5Cb", http.StatusBadRequest, loginas.CauseBadID, "That user ID is not valid."},
}

func TestRefusalsOfAPermittedActor(t *testing.T) {
	t.Parallel()
	for _, tc := range refusalCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st)
				c := a.signedIn("admin")
				path := "/admin/loginas/" + tc.target
				before := c.state()

				r := c.post(path, c.withToken(nil), jsonAccept)
				assert.Equal(t, tc.status, r.status)
				assert.Equal(t, map[string]any{"error": tc.message}, r.jsonBody(t))
				assert.Empty(t, r.location())

				r = c.post(path, c.withToken(nil))
				assert.Equal(t, http.StatusSeeOther, r.status)
				assert.Equal(t, "/", r.location())
				assert.Equal(t, []string{tc.message}, c.flashes())

				after := c.state()
				assert.Equal(t, "admin", after.user())
				assert.False(t, after.Impersonated)
				assert.False(t, after.HasRecord)
				assert.Equal(t, before.SessionID, after.SessionID)

				denied := a.audit.matching(loginas.ActionDenied, "")
				require.Len(t, denied, 2)
				for _, e := range denied {
					assert.Equal(t, tc.cause, e.Cause)
					assert.Equal(t, "admin", e.ActorID)
					assert.Equal(t, tc.message, e.Detail)
				}
				assert.Empty(t, a.audit.matching(loginas.ActionStart, ""))
			})
		})
	}
}

func TestNestingIsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			// Even an actor allowed to impersonate from the target's
			// account cannot nest.
			o.CanImpersonate = func(*gin.Context, loginas.User) bool { return true }
		}))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		before := c.state()
		r := c.switchTo("bob", nil, jsonAccept)
		assert.Equal(t, http.StatusConflict, r.status)
		assert.Equal(t, "You are already signed in as another user. Return to your own account first.", r.jsonBody(t)["error"])

		r = c.switchTo("bob", nil)
		assert.Equal(t, http.StatusSeeOther, r.status)
		after := c.state()
		assert.Equal(t, "alice", after.user())
		assert.Equal(t, before.Current, after.Current, "the running impersonation is untouched")
		nested := a.audit.matching(loginas.ActionDenied, loginas.CauseNested)
		require.Len(t, nested, 2)
		assert.Equal(t, "admin", nested[0].ActorID, "the audit names the real actor")

		// The way back still leads to admin, not alice.
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, "admin", c.state().user())
	})
}

func TestRefusalGoesBackToSameOriginReferer(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.RefusalRedirectURL = "/admin/" }))
		u, _ := url.Parse(a.server.URL)
		host := u.Host
		cases := []struct {
			referer string
			want    string
		}{
			{"http://" + host + "/admin/users/root", "/admin/users/root"},
			{"http://" + host + "/admin/users/root?tab=2", "/admin/users/root?tab=2"},
			{"", "/admin/"},
			{"https://evil.example/admin/users/root", "/admin/"},
			{"http://" + host + ".evil.example/x", "/admin/"},
			{"http://user:pw@" + host + "/x", "/admin/"},
			{"javascript:alert(1)", "/admin/"},
			{"ftp://" + host + "/x", "/admin/"},
			{"http://" + host + "//evil.example/x", "/admin/"},
			{"/relative/only", "/admin/"},
			{"http://" + host + "/%zz", "/admin/"},
		}
		c := a.signedIn("admin")
		for _, tc := range cases {
			t.Run(tc.referer, func(t *testing.T) {
				r := c.switchTo("root", nil, header("Referer", tc.referer))
				assert.Equal(t, http.StatusSeeOther, r.status)
				assert.Equal(t, tc.want, r.location())
				assert.Equal(t, []string{"You cannot log in as a superuser."}, c.flashes())
			})
		}
	})
}

// The answer to an actor who may not impersonate, or to nobody, must not
// tell an existing user from a missing one.
func TestRefusalDoesNotRevealWhichIDsExist(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		for _, external := range []bool{false, true} {
			a := newApp(t, st, withOptions(func(o *loginas.Options) { o.ExternalCSRF = external }))
			actors := []string{"", "staff", "alice", "carol"} // "" is anonymous
			for _, actor := range actors {
				for _, accept := range []http.Header{nil, jsonAccept} {
					var first *reply
					var firstFlash []string
					for _, target := range []string{"bob", "nobody", "root", "carol", "x9"} {
						c := a.client()
						if actor != "" {
							c.signIn(actor)
						}
						form := url.Values{}
						if tok := c.token(); tok != "" {
							form.Set(loginas.CSRFField, tok)
						}
						r := c.post(a.plugin.LoginAsURL(target), form, accept)
						require.Lessf(t, r.status, 500, "actor %q target %q", actor, target)
						flash := c.flashes()
						if first == nil {
							first, firstFlash = r, flash
							continue
						}
						assert.Equalf(t, first.status, r.status, "status, actor %q target %q external %v", actor, target, external)
						assert.Equalf(t, first.location(), r.location(), "Location, actor %q target %q", actor, target)
						assert.Equalf(t, first.body, r.body, "body, actor %q target %q", actor, target)
						assert.Equalf(t, firstFlash, flash, "flash, actor %q target %q", actor, target)
					}
				}
			}
		}
	})
}

func TestSwitchAnswersJSON(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		start := a.clock.Now()
		r := c.switchTo("alice", url.Values{"next": {"/orders"}}, jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, map[string]any{
			"impersonating": true,
			"impersonation": a.audit.only(t, loginas.ActionStart, "").ImpersonationID,
			"user":          map[string]any{"id": "alice", "name": "Alice"},
			"impersonator":  map[string]any{"id": "admin", "name": "Admin"},
			"deadline":      start.Add(loginas.DefaultMaxDuration).UTC().Format("2006-01-02T15:04:05Z07:00"),
			"redirect":      "/orders",
		}, r.jsonBody(t))
		assert.Equal(t, "alice", c.state().user())

		r = c.logout(url.Values{"next": {"/admin/users/alice"}}, jsonAccept)
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, map[string]any{
			"impersonating": false,
			"user":          map[string]any{"id": "admin", "name": "Admin"},
			"redirect":      "/admin/users/alice",
		}, r.jsonBody(t))
		assert.Equal(t, "admin", c.state().user())

		r = c.logout(nil, jsonAccept)
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, map[string]any{"impersonating": false, "user": nil, "redirect": "/"}, r.jsonBody(t))
		assert.Nil(t, c.state().User)
	})
}

func TestTokenInHeader(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		r := c.post(a.plugin.LoginAsURL("alice"), nil, header(loginas.CSRFHeader, c.token(), "Accept", "application/json"))
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, "alice", c.state().user())
	})
}

func TestPlainLogoutWithoutRecord(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("alice")
		c.setValue("extra", "cart", "")
		before := c.state()
		r := c.logout(nil)
		assert.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "/", r.location())
		after := c.state()
		assert.Nil(t, after.User)
		assert.Nil(t, after.Extra, "the whole session is cleared")
		if st.serverSide {
			assert.NotEqual(t, before.SessionID, after.SessionID, "a logout re-keys the session")
		}
		assert.Empty(t, c.flashes())
		assert.Empty(t, a.audit.Events(), "a plain logout is not an impersonation event")
	})
}

func TestAnonymousLogoutIsANoOp(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.client()
		c.setValue("extra", "kept", "")
		r := c.post(a.plugin.LogoutURL(), nil)
		assert.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "/", r.location())
		assert.Empty(t, r.header.Values("Set-Cookie"), "nothing to change")
		assert.Equal(t, "kept", c.state().Extra)
		assert.Empty(t, a.audit.Events())
	})
}

func TestSignedInLogoutNeedsToken(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		r := c.post(a.plugin.LogoutURL(), nil)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "alice", c.state().user(), "a forged logout does not end the impersonation")
		c2 := a.signedIn("bob")
		r = c2.post(a.plugin.LogoutURL(), nil)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "bob", c2.state().user(), "a forged logout does not sign out")
	})
}

// nextCases are values of the next form field: only local paths are
// followed.
var nextCases = []struct {
	next  string
	local bool
}{
	{"/admin/users/alice", true},
	{"/", true},
	{"/search?q=a+b&page=2", true},
	{"/a/b#section", true},
	{"/caf%C3%A9", true},
	{"//evil.example", false},
	{"//evil.example/path", false},
	{`/\evil.example`, false},
	{`\\evil.example`, false},
	{"https://evil.example/", false},
	{"http:/evil.example", false},
	{"javascript:alert(1)", false},
	{"JavaScript:alert(1)", false},
	{"data:text/html,<script>alert(1)</script>", false},
	{"evil.example", false},
	{"", false},
	{" /leading-space", false},
	{"/tab\there", false},
	{"/x\r\nSet-Cookie: a=b", false},
	{"/nul\x00", false},
	{"/" + strings.Repeat("a", 2048), false},
	{"/bad-utf8-\xff", false},
}

func TestNextAfterSwitch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		for _, tc := range nextCases {
			t.Run(strings.ToValidUTF8(tc.next, "?"), func(t *testing.T) {
				t.Parallel()
				a := newApp(t, st, withOptions(func(o *loginas.Options) { o.RedirectURL = "/home" }))
				c := a.signedIn("admin")
				r := c.switchTo("alice", url.Values{"next": {tc.next}})
				require.Equal(t, http.StatusSeeOther, r.status)
				want := "/home"
				if tc.local {
					want = tc.next
				}
				assert.Equal(t, want, r.location())
				assert.Equal(t, "alice", c.state().user())
			})
		}
	})
}

func TestNextAfterLogout(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.LogoutRedirectURL = "/bye" }))
		for _, tc := range nextCases {
			t.Run(strings.ToValidUTF8(tc.next, "?"), func(t *testing.T) {
				want := "/bye"
				if tc.local {
					want = tc.next
				}
				c := a.signedIn("admin")
				c.mustSwitch("alice")
				r := c.logout(url.Values{"next": {tc.next}})
				require.Equal(t, http.StatusSeeOther, r.status)
				assert.Equal(t, want, r.location(), "return")
				assert.Equal(t, "admin", c.state().user())
				r = c.logout(url.Values{"next": {tc.next}})
				assert.Equal(t, want, r.location(), "plain logout")
				r = c.post(a.plugin.LogoutURL(), url.Values{"next": {tc.next}})
				assert.Equal(t, want, r.location(), "anonymous logout")
			})
		}
	})
}

// appLogout is an app's own logout handler, behind ReturnRoute (the
// plugin's origin and token checks): it calls Restore first and signs out
// otherwise.
func appLogout(r *gin.Engine, p *loginas.Plugin) {
	r.POST("/logout", p.ReturnRoute(), func(c *gin.Context) {
		back, err := p.Restore(c)
		if err != nil {
			c.String(http.StatusInternalServerError, "restore: %v", err)
			return
		}
		if back {
			c.Redirect(http.StatusSeeOther, "/admin/")
			return
		}
		s := sessions.Default(c)
		s.Clear()
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Redirect(http.StatusSeeOther, "/login")
	})
}

func TestRestoreFromTheAppsLogout(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withRoutes(appLogout))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		c.setValue("extra", "alice's", "")
		impSession := c.state().SessionID

		r := c.post("/logout", nil)
		assert.Equal(t, http.StatusForbidden, r.status, "ReturnRoute wants the token")
		r = c.post("/logout", c.withToken(nil))
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		assert.Equal(t, "/admin/", r.location())
		s := c.state()
		assert.Equal(t, "admin", s.user())
		assert.False(t, s.Impersonated)
		assert.Nil(t, s.Extra)
		if st.serverSide {
			assert.NotEqual(t, impSession, s.SessionID)
		}
		assert.Equal(t, []string{msgReturned}, c.flashes())
		a.audit.only(t, loginas.ActionEnd, loginas.CauseLogout)

		r = c.post("/logout", c.withToken(nil))
		assert.Equal(t, "/login", r.location(), "without an impersonation the app logs out")
		assert.Nil(t, c.state().User)
	})
}

func TestRestoreReportsTheImpersonationIsOverInTheSameRequest(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore, withRoutes(func(r *gin.Engine, p *loginas.Plugin) {
		r.POST("/logout", func(c *gin.Context) {
			back, err := p.Restore(c)
			_, still := loginas.Current(c)
			_, inContext := loginas.FromContext(c.Request.Context())
			c.JSON(http.StatusOK, gin.H{"back": back, "err": err != nil, "flag": loginas.IsImpersonated(c), "current": still, "context": inContext})
		})
	}))
	c := a.signedIn("admin")
	c.mustSwitch("alice")
	r := c.post("/logout", nil)
	assert.JSONEq(t, `{"back": true, "err": false, "flag": false, "current": false, "context": false}`, r.body)
}

// When a start fails (the audit sink, the session store or the Store), no
// side effect has happened: UpdateLastLogin and Notify have not run, and
// the Store holds no live entry.
func TestFailedStartHasNoSideEffects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		fail func(a *testApp, store *faultyStore)
	}{
		{"audit sink", func(a *testApp, _ *faultyStore) { a.audit.failStarts.Store(true) }},
		{"session store", func(a *testApp, _ *faultyStore) { a.faults.failSaves.Store(true) }},
		{"Store", func(_ *testApp, store *faultyStore) { store.failStart.Store(true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				store := &faultyStore{Store: loginas.NewMemoryStore()}
				var touched, notified atomic.Int32
				a := newApp(t, st, withOptions(func(o *loginas.Options) {
					o.Store = store
					o.UpdateLastLogin = func(*gin.Context, loginas.User) error { touched.Add(1); return nil }
					o.Notify = func(context.Context, loginas.Entry) { notified.Add(1) }
				}), withFaults())
				cl := a.signedIn("admin")
				form := cl.withToken(nil)
				c.fail(a, store)
				r := cl.post(a.plugin.LoginAsURL("alice"), form)
				assert.GreaterOrEqual(t, r.status, 500, r.body)
				a.faults.failSaves.Store(false)
				assert.Equal(t, "admin", cl.state().user())
				assert.Zero(t, touched.Load(), "UpdateLastLogin ran")
				assert.Zero(t, notified.Load(), "Notify ran")
				live, err := store.Live(t.Context(), "", a.clock.Now(), 10)
				require.NoError(t, err)
				assert.Empty(t, live, "the Store holds a live entry")
			})
		})
	}
}

func TestJSONClients(t *testing.T) {
	eachStore(t, func(t *testing.T, st storeKind) {
		app := newApp(t, st)
		c := app.signedIn("admin")

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

// End and EndAll, called with the request's gin context, name in the audit
// trail who ended the impersonations, and from where.
func TestEndAndEndAllNameWhoEnded(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore, withRoutes(func(r *gin.Engine, p *loginas.Plugin) {
		r.POST("/test/end-all", func(c *gin.Context) {
			if err := p.EndAll(c, c.PostForm("actor")); err != nil {
				c.AbortWithStatus(http.StatusServiceUnavailable)
			}
		})
	}))
	actor := a.signedIn("admin")
	actor.mustSwitch("alice")
	root := a.signedIn("root")
	require.Equal(t, http.StatusOK, root.post("/test/end-all", url.Values{"actor": {"admin"}}).status)
	e := a.audit.only(t, loginas.ActionEnd, loginas.CauseEnded)
	assert.Equal(t, "ended by root", e.Detail)
	assert.Equal(t, "/test/end-all", e.Path)
	assert.NotEmpty(t, e.ClientIP)
}
