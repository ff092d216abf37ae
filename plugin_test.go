package loginas_test

import (
	"context"
	"encoding/gob"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

func validOptions() loginas.Options {
	users := newUserStore()
	return loginas.Options{FindUser: users.find, SessionKey: userKey, Secret: testSecret, Logger: quietLogger}
}

// The README's configuration table has a row for every field of Options.
func TestReadmeListsEveryOption(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	fields := reflect.TypeFor[loginas.Options]()
	for i := range fields.NumField() {
		name := fields.Field(i).Name
		assert.Containsf(t, string(readme), "| `"+name+"` |", "README.md's configuration table has no row for Options.%s", name)
	}
}

func TestRegisterRejectsInvalidOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(o *loginas.Options)
		want   []string // each must appear in the error
	}{
		{"missing FindUser", func(o *loginas.Options) { o.FindUser = nil }, []string{"Options.FindUser", "required"}},
		{"missing SessionKey", func(o *loginas.Options) { o.SessionKey = "" }, []string{"Options.SessionKey", "required"}},
		{"blank SessionKey", func(o *loginas.Options) { o.SessionKey = "  " }, []string{"Options.SessionKey"}},
		{"missing Secret", func(o *loginas.Options) { o.Secret = nil }, []string{"Options.Secret", "32", "got 0"}},
		{"short Secret", func(o *loginas.Options) { o.Secret = []byte("too-short") }, []string{"Options.Secret", "32", "got 9"}},
		{"short previous secret", func(o *loginas.Options) {
			o.PreviousSecrets = [][]byte{otherSecret, []byte("old")}
		}, []string{"Options.PreviousSecrets[1]", "32"}},
		{"prefix without leading slash", func(o *loginas.Options) { o.Prefix = "admin/loginas" }, []string{"Options.Prefix", "must start with /"}},
		{"prefix with trailing slash", func(o *loginas.Options) { o.Prefix = "/admin/loginas/" }, []string{"Options.Prefix"}},
		{"prefix with a parameter", func(o *loginas.Options) { o.Prefix = "/admin/:x" }, []string{"Options.Prefix"}},
		{"prefix with a wildcard", func(o *loginas.Options) { o.Prefix = "/admin/*rest" }, []string{"Options.Prefix"}},
		{"absolute RedirectURL", func(o *loginas.Options) { o.RedirectURL = "https://evil.example/" }, []string{"Options.RedirectURL", "local path"}},
		{"scheme-relative LogoutRedirectURL", func(o *loginas.Options) { o.LogoutRedirectURL = "//evil.example/" }, []string{"Options.LogoutRedirectURL", "local path"}},
		{"backslash RefusalRedirectURL", func(o *loginas.Options) { o.RefusalRedirectURL = `/\evil.example` }, []string{"Options.RefusalRedirectURL", "local path"}},
		{"javascript LoginURL", func(o *loginas.Options) { o.LoginURL = "javascript:alert(1)" }, []string{"Options.LoginURL", "local path"}},
		{"relative RedirectURL", func(o *loginas.Options) { o.RedirectURL = "admin" }, []string{"Options.RedirectURL"}},
		{"negative MaxDuration", func(o *loginas.Options) { o.MaxDuration = -time.Minute }, []string{"Options.MaxDuration", "negative"}},
		{"negative MaxReasonLength", func(o *loginas.Options) { o.MaxReasonLength = -1 }, []string{"Options.MaxReasonLength", "negative"}},
		{"bad trusted origin", func(o *loginas.Options) { o.TrustedOrigins = []string{"not an origin"} }, []string{"Options.TrustedOrigins"}},
		{"trusted origin with a path", func(o *loginas.Options) { o.TrustedOrigins = []string{"https://admin.example/path"} }, []string{"Options.TrustedOrigins"}},
		{"record key equals session key", func(o *loginas.Options) { o.RecordKey = userKey }, []string{"SessionKey and RecordKey must differ"}},
		{"catalog without English", func(o *loginas.Options) {
			o.Messages = loginas.Catalog{"de": loginas.DefaultMessages()["de"]}
		}, []string{"Options.Messages", `"en"`}},
		{"English catalog with a gap", func(o *loginas.Options) {
			cat := loginas.DefaultMessages()
			cat["en"].Switched = ""
			o.Messages = cat
		}, []string{"Options.Messages", "Switched"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := validOptions()
			tc.change(&opts)
			r := gin.New()
			p, err := loginas.Register(r, opts)
			require.Error(t, err)
			assert.Nil(t, p)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Empty(t, r.Routes(), "a failed Register must not mount routes")
		})
	}
}

func TestRegisterReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := loginas.Register(gin.New(), loginas.Options{})
	require.Error(t, err)
	for _, w := range []string{"Options.FindUser", "Options.SessionKey", "Options.Secret"} {
		assert.Contains(t, err.Error(), w)
	}
}

func TestRegisterAfterRoutesIsAnError(t *testing.T) {
	t.Parallel()
	r := gin.New()
	r.GET("/early", func(c *gin.Context) {})
	_, err := loginas.Register(r, validOptions())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "before routes")
	assert.Contains(t, err.Error(), "/early", "the error names the offending route")
}

func TestRegisterNilRouter(t *testing.T) {
	t.Parallel()
	_, err := loginas.Register(nil, validOptions())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "*gin.Engine")
}

// Register mounts one route per method and path it serves: the 405 answers
// for other methods come from the middleware, so gin's debug mode prints a
// line for each real route only.
func TestRegisterMountsOnlyTheRoutesItServes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		consent bool
		want    []string
	}{
		{"default", false, []string{
			"GET /admin/loginas/access", "GET /admin/loginas/live",
			"POST /admin/loginas/:id", "POST /admin/loginas/access/end", "POST /admin/loginas/logout",
		}},
		{"with consent", true, []string{
			"GET /admin/loginas/access", "GET /admin/loginas/live",
			"POST /admin/loginas/:id", "POST /admin/loginas/access/consent", "POST /admin/loginas/access/end", "POST /admin/loginas/logout",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := gin.New()
			opts := validOptions()
			opts.RequireConsent = c.consent
			_, err := loginas.Register(r, opts)
			require.NoError(t, err)
			var got []string
			for _, route := range r.Routes() {
				got = append(got, route.Method+" "+route.Path)
			}
			assert.ElementsMatch(t, c.want, got)
		})
	}
}

func TestNewDoesNotNeedARouter(t *testing.T) {
	t.Parallel()
	p, err := loginas.New(validOptions())
	require.NoError(t, err)
	assert.Equal(t, "/admin/loginas/alice", p.LoginAsURL("alice"))
	assert.Equal(t, "/admin/loginas/logout", p.LogoutURL())
	_, err = loginas.New(loginas.Options{})
	require.Error(t, err)
}

func TestLoginAsURLEscapesTheID(t *testing.T) {
	t.Parallel()
	p, err := loginas.New(validOptions())
	require.NoError(t, err)
	assert.Equal(t, "/admin/loginas/a%20b", p.LoginAsURL("a b"))
	assert.Equal(t, "/admin/loginas/a%2Fb", p.LoginAsURL("a/b"))
}

// Each documented default gets its own test, so the documentation cannot
// drift from the code.

func TestDefaultPrefix(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "/admin/loginas", loginas.DefaultPrefix)
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		assert.Equal(t, "/admin/loginas/alice", a.plugin.LoginAsURL("alice"))
		assert.Equal(t, "/admin/loginas/logout", a.plugin.LogoutURL())
		c := a.signedIn("admin")
		r := c.post("/admin/loginas/alice", c.withToken(nil))
		assert.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "alice", c.state().user())
	})
}

func TestCustomPrefix(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.Prefix = "/staff/impersonate" }))
		c := a.signedIn("admin")
		assert.Equal(t, http.StatusNotFound, c.post("/admin/loginas/alice", c.withToken(nil)).status)
		r := c.post("/staff/impersonate/alice", c.withToken(nil))
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "alice", c.state().user())
		r = c.post("/staff/impersonate/logout", c.withToken(nil))
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "admin", c.state().user())
	})
}

func TestDefaultMaxDurationIsOneHour(t *testing.T) {
	t.Parallel()
	assert.Equal(t, time.Hour, loginas.DefaultMaxDuration)
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		start := a.clock.Now()
		c.mustSwitch("alice")
		cur := c.state().Current
		require.NotNil(t, cur)
		assert.True(t, cur.Deadline.Equal(start.Add(time.Hour)), "deadline %s, want start + 1h", cur.Deadline)

		a.clock.advance(time.Hour - time.Second)
		assert.True(t, c.state().Impersonated, "still impersonating a second before the hour")
		a.clock.advance(time.Second)
		st2 := c.state()
		assert.False(t, st2.Impersonated)
		assert.Nil(t, st2.User, "signed out at the hour")
	})
}

func TestDefaultMaxReasonLengthIs500(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 500, loginas.DefaultMaxReasonLength)
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		r := c.switchTo("alice", url.Values{"reason": {strings.Repeat("é", 501)}}, jsonAccept)
		assert.Equal(t, http.StatusUnprocessableEntity, r.status)
		a.audit.only(t, loginas.ActionDenied, loginas.CauseReasonTooLong)
		assert.Equal(t, "admin", c.state().user())

		long := strings.Repeat("é", 500) // 500 characters, 1000 bytes
		r = c.switchTo("alice", url.Values{"reason": {long}})
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, long, a.audit.only(t, loginas.ActionStart, "").Reason)
	})
}

func TestDefaultRedirectURLsAreRoot(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		assert.Equal(t, "/", c.switchTo("alice", nil).location(), "after a switch")
		assert.Equal(t, "/", c.logout(nil).location(), "after a return")
		assert.Equal(t, "/", c.switchTo("root", nil).location(), "after a refusal without a Referer")
		assert.Equal(t, "/", c.logout(nil).location(), "after a plain logout")
	})
}

func TestDefaultOnlySuperusersMayImpersonate(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		for _, actor := range []string{"staff", "alice"} {
			c := a.signedIn(actor)
			r := c.switchTo("bob", nil, jsonAccept)
			assert.Equal(t, http.StatusForbidden, r.status, actor)
			assert.Equal(t, actor, c.state().user())
		}
		assert.Len(t, a.audit.matching(loginas.ActionDenied, loginas.CauseNotPermitted), 2)
		assert.True(t, loginas.SuperusersOnly(nil, loginas.User{Superuser: true, Active: true}))
		assert.False(t, loginas.SuperusersOnly(nil, loginas.User{Superuser: true}))
		assert.False(t, loginas.SuperusersOnly(nil, loginas.User{Active: true}))
	})
}

func TestDefaultSuperuserTargetsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		r := c.switchTo("root", nil, jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "You cannot log in as a superuser.", r.jsonBody(t)["error"])
		a.audit.only(t, loginas.ActionDenied, loginas.CauseSuperuser)
		assert.Equal(t, "admin", c.state().user())
	})
}

func TestAllowSuperuserTargets(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.AllowSuperuserTargets = true }))
		c := a.signedIn("admin")
		c.mustSwitch("root")
		cur := c.state().Current
		require.NotNil(t, cur)
		assert.Equal(t, "admin", cur.ActorID)
	})
}

func TestDefaultLastLoginUntouched(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.loginasClient(t, "admin")
		c.LoginAs(t, "alice", "")
		c.Return(t)
		// The app's last-login bookkeeping runs only through the hook.
		assert.Zero(t, a.users.logins("alice"))
		assert.Zero(t, a.users.logins("admin"))
	})
}

func TestDefaultDisplayNameIsNameOrID(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		c := a.signedIn("admin")
		c.mustSwitch("nameless")
		assert.Equal(t, []string{"You are now signed in as nameless. Use “Return to my account” to go back."}, c.flashes())
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, []string{"Welcome back, Admin: you are signed in as yourself again."}, c.flashes())
		start := a.audit.only(t, loginas.ActionStart, "")
		assert.Equal(t, "Admin", start.ActorName)
		assert.Equal(t, "nameless", start.TargetName)
	})
}

// An app that keeps its user ID under SessionKey as an integer type or a
// string reads the same type back after a switch and after the return,
// with no StoreUserID.
func TestIDsKeepTheAppsType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		admin any
	}{
		{"uint", uint(1)}, {"uint8", uint8(1)}, {"uint16", uint16(1)}, {"uint32", uint32(1)}, {"uint64", uint64(1)},
		{"int", 1}, {"int8", int8(1)}, {"int16", int16(1)}, {"int32", int32(1)}, {"int64", int64(1)},
		{"string", "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st, typedIDs(c.admin))
				cl := a.client()
				cl.post("/typed-login", nil)
				want := fmt.Sprintf("%T", c.admin)
				require.Equal(t, want+" 1", cl.get("/type").body)
				r := cl.switchTo("2", nil)
				require.Equal(t, http.StatusSeeOther, r.status, r.body)
				assert.Equal(t, want+" 2", cl.get("/type").body, "the target's ID in the app's type")
				require.Equal(t, http.StatusSeeOther, cl.logout(nil).status)
				assert.Equal(t, want+" 1", cl.get("/type").body, "the actor's ID in the app's type")
			})
		})
	}
}

// typedIDs gives the app users "1" (a superuser) and "2", a sign-in that
// keeps admin (the first user's ID in the app's own type) under userKey,
// and GET /type, which shows the type and value kept there.
func typedIDs(admin any) appOption {
	return func(s *appSetup) {
		s.opts.FindUser = func(_ context.Context, id string) (loginas.User, error) {
			switch id {
			case "1":
				return loginas.User{ID: "1", Name: "Admin", Superuser: true, Active: true}, nil
			case "2":
				return loginas.User{ID: "2", Name: "Alice", Active: true}, nil
			}
			return loginas.User{}, loginas.ErrUserNotFound
		}
		s.routes = append(s.routes, func(r *gin.Engine, _ *loginas.Plugin) {
			r.POST("/typed-login", func(c *gin.Context) {
				s := sessions.Default(c)
				s.Set(userKey, admin)
				_ = s.Save()
			})
			r.GET("/type", func(c *gin.Context) {
				v := sessions.Default(c).Get(userKey)
				c.String(http.StatusOK, fmt.Sprintf("%T %v", v, v))
			})
		})
	}
}

// accountID is a named integer type, as apps declare for their IDs.
type accountID uint

// uuidLike is an ID type the plugin cannot make from a string: it reads it
// through String, and needs StoreUserID to write one.
type uuidLike struct{ N int }

func (u uuidLike) String() string { return strconv.Itoa(u.N) }

func init() {
	gob.Register(accountID(0))
	gob.Register(uuidLike{})
}

// A named integer type is mirrored too. A value of a type the plugin cannot
// mirror refuses the switch with an error that names the option to set;
// StoreUserID covers such custom cases.
func TestCustomIDTypes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		t.Run("named integer type", func(t *testing.T) {
			a := newApp(t, st, typedIDs(accountID(1)))
			c := a.client()
			c.post("/typed-login", nil)
			require.Equal(t, http.StatusSeeOther, c.switchTo("2", nil).status)
			assert.Equal(t, "loginas_test.accountID 2", c.get("/type").body)
			require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
			assert.Equal(t, "loginas_test.accountID 1", c.get("/type").body)
		})
		t.Run("a type that cannot be mirrored", func(t *testing.T) {
			logs := &logBuffer{}
			a := newApp(t, st, typedIDs(uuidLike{1}), withOptions(func(o *loginas.Options) { o.Logger = logs.logger() }))
			c := a.client()
			c.post("/typed-login", nil)
			r := c.switchTo("2", nil)
			assert.Equal(t, http.StatusInternalServerError, r.status)
			assert.Contains(t, logs.String(), "set Options.StoreUserID")
			assert.Contains(t, logs.String(), "loginas_test.uuidLike")
			assert.Equal(t, "loginas_test.uuidLike 1", c.get("/type").body, "nothing changed")
		})
		t.Run("StoreUserID", func(t *testing.T) {
			a := newApp(t, st, typedIDs(uuidLike{1}), withOptions(func(o *loginas.Options) {
				o.StoreUserID = func(id string) (any, error) {
					n, err := strconv.Atoi(id)
					return uuidLike{n}, err
				}
			}))
			c := a.client()
			c.post("/typed-login", nil)
			require.Equal(t, http.StatusSeeOther, c.switchTo("2", nil).status)
			assert.Equal(t, "loginas_test.uuidLike 2", c.get("/type").body)
			require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
			assert.Equal(t, "loginas_test.uuidLike 1", c.get("/type").body)
		})
	})
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
			c := app.signedIn(tc.actor)
			start := app.clock.Now()
			c.mustSwitch("alice")
			cur := c.state().Current
			require.NotNil(t, cur)
			assert.Equal(t, start.Add(tc.limit).UnixMilli(), cur.Deadline.UnixMilli())
		})
	}
}
