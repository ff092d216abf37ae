package loginas_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

const (
	msgExpired = "Your session as Alice reached its time limit, so you have been signed out. Please sign in again."
	msgRevoked = "Your session as Alice was ended because the permission for it no longer holds. Please sign in again."
	msgInvalid = "Your session could not be verified, so you have been signed out. Please sign in again."
	msgEnded   = "Your session as Alice was ended by an administrator. Please sign in again."
)

// assertSignedOut checks that the next request finds the session signed
// out, with the given flash and one audit end event of the given cause.
func assertSignedOut(t *testing.T, a *testApp, c *client, cause loginas.Cause, flash string) loginas.Event {
	t.Helper()
	r := c.get("/test/state")
	require.Equal(t, http.StatusOK, r.status, "signing out is never a 5xx: %s", r.body)
	assert.Empty(t, r.header.Values(loginas.HeaderImpersonatedUser))
	s := c.state()
	assert.Nil(t, s.User, "signed out, not returned to anybody")
	assert.False(t, s.Impersonated)
	assert.False(t, s.HasRecord)
	assert.Equal(t, []string{flash}, c.flashes())
	return a.audit.only(t, loginas.ActionEnd, cause)
}

func TestExpiredImpersonationSignsOut(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.MaxDuration = 90 * time.Second }))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		c.flashes()
		imp := c.state().Current
		require.NotNil(t, imp)

		a.clock.advance(89 * time.Second)
		assert.True(t, c.state().Impersonated)
		a.clock.advance(time.Second)
		e := assertSignedOut(t, a, c, loginas.CauseExpired, msgExpired)
		assert.Equal(t, imp.ID, e.ImpersonationID)
		assert.Equal(t, "admin", e.ActorID)
		assert.Equal(t, "alice", e.TargetID)

		a.clock.advance(time.Hour)
		assert.Nil(t, c.state().User, "still signed out later")
		assert.Len(t, a.audit.matching(loginas.ActionEnd, ""), 1, "ended once")
	})
}

func TestExpiredImpersonationNeverBecomesTheActor(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		t.Run("logout after the deadline", func(t *testing.T) {
			a := newApp(t, st)
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			form := c.withToken(nil) // token fetched in time
			a.clock.advance(2 * time.Hour)
			r := c.post(a.plugin.LogoutURL(), form)
			assert.Equal(t, http.StatusSeeOther, r.status)
			s := c.state()
			assert.Nil(t, s.User, "an expired impersonation does not return to admin")
			a.audit.only(t, loginas.ActionEnd, loginas.CauseExpired)
			assert.Empty(t, a.audit.matching(loginas.ActionEnd, loginas.CauseLogout))
		})
		t.Run("replayed cookie after the deadline", func(t *testing.T) {
			a := newApp(t, st)
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			copied := c.cookies()
			require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
			assert.Equal(t, "admin", c.state().user())

			a.clock.advance(2 * time.Hour)
			replay := a.clientWith(copied)
			s := replay.state()
			assert.Nil(t, s.User)
			assert.False(t, s.Impersonated)
			tok := replay.token()
			assert.Empty(t, tok)
			r := replay.post(a.plugin.LogoutURL(), nil)
			assert.Equal(t, http.StatusSeeOther, r.status)
			assert.Nil(t, replay.state().User)
			assert.Equal(t, "admin", c.state().user(), "the real admin session is unaffected")
		})
		t.Run("switch attempt after the deadline", func(t *testing.T) {
			a := newApp(t, st)
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			form := c.withToken(nil)
			a.clock.advance(2 * time.Hour)
			r := c.post(a.plugin.LoginAsURL("bob"), form)
			assert.Less(t, r.status, 500)
			assert.Nil(t, c.state().User)
		})
	})
}

// intValue marks setValue's value as an int rather than a string.
const intValue = "int"

func TestTamperedRecordSignsOut(t *testing.T) {
	t.Parallel()
	forged := func(t *testing.T) string {
		// A record made by an app with another secret.
		other := newApp(t, cookieStore, withOptions(func(o *loginas.Options) { o.Secret = otherSecret }))
		c := other.signedIn("admin")
		c.mustSwitch("alice")
		v, ok := c.sessionValue(loginas.DefaultRecordKey).(string)
		require.True(t, ok)
		return v
	}
	b64 := base64.RawURLEncoding.EncodeToString
	cases := []struct {
		name   string
		edit   func(t *testing.T, record string) (value, kind string)
		asUser string // if set, the session's user is changed to this
	}{
		{"signature changed", func(_ *testing.T, r string) (string, string) {
			last := r[len(r)-2]
			repl := byte('A')
			if last == 'A' {
				repl = 'B'
			}
			return r[:len(r)-2] + string(repl) + r[len(r)-1:], ""
		}, ""},
		{"signature removed", func(_ *testing.T, r string) (string, string) {
			return r[:strings.LastIndexByte(r, '.')], ""
		}, ""},
		{"actor replaced", func(_ *testing.T, r string) (string, string) {
			parts := strings.Split(r, ".")
			parts[1] = b64([]byte("root"))
			return strings.Join(parts, "."), ""
		}, ""},
		{"deadline extended", func(_ *testing.T, r string) (string, string) {
			parts := strings.Split(r, ".")
			parts[4] = "99999999999"
			return strings.Join(parts, "."), ""
		}, ""},
		{"version changed", func(_ *testing.T, r string) (string, string) {
			return "v2" + r[2:], ""
		}, ""},
		{"names another user than the session", func(_ *testing.T, r string) (string, string) { return r, "" }, "bob"},
		{"garbage", func(*testing.T, string) (string, string) { return "hello", "" }, ""},
		{"empty", func(*testing.T, string) (string, string) { return "", "" }, ""},
		{"too long", func(_ *testing.T, r string) (string, string) { return r + strings.Repeat("A", 600), "" }, ""},
		{"not a string", func(*testing.T, string) (string, string) { return "42", intValue }, ""},
		{"signed with another secret", func(t *testing.T, _ string) (string, string) { return forged(t), "" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st)
				c := a.signedIn("admin")
				c.mustSwitch("alice")
				c.flashes()
				record, ok := c.sessionValue(loginas.DefaultRecordKey).(string)
				require.True(t, ok)
				value, kind := tc.edit(t, record)
				c.setValue(loginas.DefaultRecordKey, value, kind)
				if tc.asUser != "" {
					c.setValue(userKey, tc.asUser, "")
				}
				e := assertSignedOut(t, a, c, loginas.CauseInvalid, msgInvalid)
				assert.NotEmpty(t, e.Detail)

				// And the signed-out session cannot restore anyone.
				r := c.post(a.plugin.LogoutURL(), nil)
				assert.Equal(t, http.StatusSeeOther, r.status)
				assert.Nil(t, c.state().User)
			})
		})
	}
}

func TestForgedRecordPlantedByATargetIsRejected(t *testing.T) {
	t.Parallel()
	// A user who can write their own session (say, through an app bug) and
	// plants a record claiming to be an admin's impersonation gets signed
	// out rather than promoted.
	eachStore(t, func(t *testing.T, st storeKind) {
		other := newApp(t, st, withOptions(func(o *loginas.Options) { o.Secret = otherSecret }))
		oc := other.signedIn("admin")
		oc.mustSwitch("alice")
		record := oc.sessionValue(loginas.DefaultRecordKey).(string)

		a := newApp(t, st)
		c := a.signedIn("alice")
		c.setValue(loginas.DefaultRecordKey, record, "")
		assertSignedOut(t, a, c, loginas.CauseInvalid, msgInvalid)
	})
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		// Records made while otherSecret was current, and the instances
		// that follow it, sharing one Store as a rotation across a restart
		// does.
		store := loginas.NewMemoryStore()
		old := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.Secret = otherSecret
			o.Store = store
		}))
		oc := old.signedIn("admin")
		oc.mustSwitch("alice")
		oldRecord := oc.sessionValue(loginas.DefaultRecordKey).(string)

		rotated := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.Secret = testSecret
			o.PreviousSecrets = [][]byte{otherSecret}
			o.Store = store
		}))
		c := rotated.signedIn("alice")
		c.setValue(loginas.DefaultRecordKey, oldRecord, "")
		s := c.state()
		require.True(t, s.Impersonated, "a record signed with a previous secret still verifies")
		require.NotNil(t, s.Current)
		assert.Equal(t, "admin", s.Current.ActorID)
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, "admin", c.state().user())

		// New records are signed with the current secret only.
		c.mustSwitch("bob")
		newRecord := c.sessionValue(loginas.DefaultRecordKey).(string)
		oc2 := old.signedIn("bob")
		oc2.setValue(loginas.DefaultRecordKey, newRecord, "")
		assert.False(t, oc2.state().Impersonated, "the old secret alone does not verify new records")

		// Once the old secret is dropped, its records stop working.
		dropped := newApp(t, st, withOptions(func(o *loginas.Options) { o.Store = store }))
		dc := dropped.signedIn("alice")
		dc.setValue(loginas.DefaultRecordKey, oldRecord, "")
		assertSignedOut(t, dropped, dc, loginas.CauseInvalid, msgInvalid)
	})
}

func TestRevalidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(u *userStore)
		// skipped is whether the impersonation survives under
		// SkipRevalidation.
		skipped bool
	}{
		{"actor loses superuser", func(u *userStore) { u.update("admin", func(x *loginas.User) { x.Superuser = false }) }, true},
		{"target becomes superuser", func(u *userStore) { u.update("alice", func(x *loginas.User) { x.Superuser = true }) }, true},
		{"app rule now refuses", func(u *userStore) { u.update("alice", func(x *loginas.User) { x.Data = "protected" }) }, true},
		{"actor disabled", func(u *userStore) { u.update("admin", func(x *loginas.User) { x.Active = false }) }, false},
		{"actor deleted", func(u *userStore) { u.remove("admin") }, false},
		{"target disabled", func(u *userStore) { u.update("alice", func(x *loginas.User) { x.Active = false }) }, false},
		{"target deleted", func(u *userStore) { u.remove("alice") }, false},
	}
	protect := func(_ *gin.Context, _, target loginas.User) error {
		if target.Data == "protected" {
			return loginas.Refuse("protected account")
		}
		return nil
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				t.Run("revalidated", func(t *testing.T) {
					a := newApp(t, st, withOptions(func(o *loginas.Options) { o.CanLoginAs = protect }))
					c := a.signedIn("admin")
					c.mustSwitch("alice")
					c.flashes()
					tc.change(a.users)
					// The name comes from the Store's entry, also when the
					// user is gone.
					e := assertSignedOut(t, a, c, loginas.CauseRevoked, msgRevoked)
					assert.Equal(t, "admin", e.ActorID)
					assert.Equal(t, "alice", e.TargetID)
					assert.NotEmpty(t, e.Detail)
				})
				t.Run("SkipRevalidation", func(t *testing.T) {
					a := newApp(t, st, withOptions(func(o *loginas.Options) {
						o.CanLoginAs = protect
						o.SkipRevalidation = true
					}))
					c := a.signedIn("admin")
					c.mustSwitch("alice")
					c.flashes()
					tc.change(a.users)
					if !tc.skipped {
						a.audit.only(t, loginas.ActionStart, "")
						s := c.state()
						assert.Nil(t, s.User, "a disabled or deleted user still ends it")
						a.audit.only(t, loginas.ActionEnd, loginas.CauseRevoked)
						return
					}
					assert.True(t, c.state().Impersonated, "kept without revalidation")
					a.clock.advance(30 * time.Minute)
					assert.True(t, c.state().Impersonated)
					a.clock.advance(30 * time.Minute)
					assertSignedOut(t, a, c, loginas.CauseExpired, msgExpired)
				})
			})
		})
	}
}

func TestRevokingAnAdminEndsEveryImpersonation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st)
		var clients []*client
		for _, target := range []string{"alice", "bob", "nameless"} {
			c := a.signedIn("admin")
			c.mustSwitch(target)
			clients = append(clients, c)
		}
		other := a.signedIn("root")
		other.mustSwitch("alice")

		a.users.update("admin", func(u *loginas.User) { u.Superuser = false })
		for _, c := range clients {
			assert.Nil(t, c.state().User)
		}
		assert.Equal(t, "alice", other.state().user(), "another admin's impersonation goes on")
		assert.Len(t, a.audit.matching(loginas.ActionEnd, loginas.CauseRevoked), 3)
	})
}

// forgetfulStore is a Store that has dropped every entry, as redisstore does
// a minute after an entry's deadline.
type forgetfulStore struct {
	loginas.Store
	forget atomic.Bool
}

func (f *forgetfulStore) Entry(ctx context.Context, id string) (loginas.Entry, error) {
	if f.forget.Load() {
		return loginas.Entry{}, loginas.ErrNoEntry
	}
	return f.Store.Entry(ctx, id)
}

// An actor who comes back after the Store dropped the expired entry is told
// that the time limit was reached, with the target's name, as before the
// Store dropped it.
func TestExpiryAfterTheStoreForgotIsToldAsAnExpiry(t *testing.T) {
	t.Parallel()
	store := &forgetfulStore{Store: loginas.NewMemoryStore()}
	a := newApp(t, cookieStore, withOptions(func(o *loginas.Options) { o.Store = store }))
	c := a.signedIn("admin")
	c.mustSwitch("alice")
	a.clock.advance(loginas.DefaultMaxDuration + 2*time.Minute)
	store.forget.Store(true)
	assert.Nil(t, c.state().User)
	assert.Equal(t, []string{msgExpired}, c.flashes())
	a.audit.only(t, loginas.ActionEnd, loginas.CauseExpired)
}
