package loginas_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// accessJSON reads GET /admin/loginas/access.
func (c *client) accessJSON() (body map[string]any) {
	c.t.Helper()
	c.getJSON("/admin/loginas/access", &body, jsonAccept)
	return body
}

// list returns the entries of a JSON list field.
func list(t *testing.T, body map[string]any, field string) []map[string]any {
	t.Helper()
	raw, ok := body[field].([]any)
	require.Truef(t, ok, "%s is not a list: %v", field, body[field])
	out := make([]map[string]any, 0, len(raw))
	for _, e := range raw {
		out = append(out, e.(map[string]any))
	}
	return out
}

// banner reads the banner data of a page.
func (c *client) banner() (b loginas.Banner) {
	c.t.Helper()
	c.getJSON("/test/banner", &b)
	return b
}

// Every signed-in user can read the impersonations of their own account:
// who (or the app's label), when, how it ended and the reason, as JSON and
// through the "loginas/access" partial.
func TestAccessHistory(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		for _, label := range []string{"", "Acme support"} {
			t.Run("label="+label, func(t *testing.T) {
				a := partialApp(t, st, withOptions(func(o *loginas.Options) { o.ActorLabel = label }))
				admin := a.signedIn("admin")
				admin.mustSwitch("alice", url.Values{"reason": {"ticket 1"}})
				require.Equal(t, http.StatusSeeOther, admin.logout(nil).status)
				a.clock.advance(time.Minute)
				admin.mustSwitch("alice", url.Values{"reason": {"ticket 2"}})

				alice := a.signedIn("alice")
				history := list(t, alice.accessJSON(), "history")
				require.Len(t, history, 2)
				want := "Admin"
				if label != "" {
					want = label
				}
				assert.Equal(t, want, history[0]["actor"])
				assert.Equal(t, "ticket 2", history[0]["reason"])
				assert.Equal(t, true, history[0]["live"])
				assert.Equal(t, "still going on", history[0]["how"])
				assert.Equal(t, "ticket 1", history[1]["reason"])
				assert.Equal(t, "logout", history[1]["cause"])
				assert.Equal(t, "they returned to their own account", history[1]["how"])
				if label != "" {
					assert.NotContains(t, history[0], "actor_id", "the label hides who the actor is")
				}
				inUse := list(t, alice.accessJSON(), "in_use")
				require.Len(t, inUse, 1)
				assert.Equal(t, "ticket 2", inUse[0]["reason"])

				page := alice.get("/access").body
				assert.Contains(t, page, "Who used your account")
				assert.Contains(t, page, "ticket 1")
				assert.Contains(t, page, want)
				assert.Empty(t, inlineCode.FindString(page))

				bob := a.signedIn("bob")
				assert.Empty(t, list(t, bob.accessJSON(), "history"), "bob sees only his own account")
				assert.Equal(t, http.StatusUnauthorized, a.client().get("/admin/loginas/access", jsonAccept).status)
			})
		}
	})
}

// After an impersonation of their account ended, the person sees a notice
// once, on their next page as themselves; never while impersonated, and
// not at all with SkipEndNotices. Notify hears of the start and the end.
// An impersonation whose time ran out while its session made no request is
// shown to the person as expired at its deadline, not as still going on.
func TestAccessHistoryShowsAnUnseenExpiry(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore)
	a.signedIn("admin").mustSwitch("alice")
	a.clock.advance(loginas.DefaultMaxDuration + time.Second)
	history := list(t, a.signedIn("alice").accessJSON(), "history")
	require.Len(t, history, 1)
	assert.Equal(t, false, history[0]["live"])
	assert.Equal(t, "expired", history[0]["cause"])
	assert.Equal(t, "the time limit ran out", history[0]["how"])
	assert.Equal(t, history[0]["deadline"], history[0]["ended"])
}

func TestEndNoticeShownOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		var mu sync.Mutex
		var notified []loginas.Entry
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.ActorLabel = "Acme support"
			o.Notify = func(_ context.Context, e loginas.Entry) {
				mu.Lock()
				defer mu.Unlock()
				notified = append(notified, e)
			}
		}))
		admin, alice := a.client(), a.client()
		alice.signIn("alice")
		admin.signIn("admin")
		admin.mustSwitch("alice", url.Values{"reason": {"ticket 9"}})
		assert.Empty(t, admin.banner().Notices, "the impersonated session sees no notice")
		require.Len(t, alice.banner().InUse, 1)
		require.Equal(t, http.StatusSeeOther, admin.logout(nil).status)

		notices := alice.banner().Notices
		require.Len(t, notices, 1)
		assert.Equal(t, "Acme support used your account.", notices[0].Text)
		assert.Equal(t, "ticket 9", notices[0].Reason)
		assert.Equal(t, "they returned to their own account", notices[0].How)
		assert.Empty(t, alice.banner().Notices, "shown once")
		assert.Empty(t, alice.banner().InUse)

		mu.Lock()
		require.Len(t, notified, 2)
		assert.True(t, notified[0].Ended.IsZero(), "Notify at the start")
		assert.Equal(t, loginas.CauseLogout, notified[1].Cause, "Notify at the end")
		assert.Equal(t, "Acme support", notified[1].ActorName)
		mu.Unlock()

		quiet := newApp(t, st, withOptions(func(o *loginas.Options) { o.SkipEndNotices = true }))
		alice = quiet.client()
		alice.signIn("alice")
		tester := quiet.loginasClient(t, "admin")
		tester.LoginAs(t, "alice", "")
		tester.Return(t)
		assert.Empty(t, alice.banner().Notices)
	})
}

// The notice is shown once also across instances that share the Store.
func TestEndNoticeOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	store := loginas.NewMemoryStore()
	shared := withOptions(func(o *loginas.Options) { o.Store = store })
	a, b := newApp(t, cookieStore, shared), newApp(t, cookieStore, shared)
	admin := a.loginasClient(t, "admin")
	admin.LoginAs(t, "alice", "")
	admin.Return(t)
	onA := a.signedIn("alice")
	onB := b.clientWith(onA.cookies())
	require.Len(t, onA.banner().Notices, 1)
	assert.Empty(t, onB.banner().Notices)
}

// Whoever CanManage allows sees every live impersonation and can end any
// of them; the end reaches the session on its next request, on every
// instance, audited with its own cause.
func TestLiveListAndEnd(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		store := loginas.NewMemoryStore()
		shared := withOptions(func(o *loginas.Options) { o.Store = store })
		a := partialApp(t, st, shared)
		b := newApp(t, st, shared)
		admin := a.signedIn("admin")
		admin.mustSwitch("alice", url.Values{"reason": {"ticket 3"}})

		root := b.signedIn("root")
		r := root.get("/admin/loginas/live", jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		live := list(t, r.jsonBody(t), "live")
		require.Len(t, live, 1)
		assert.Equal(t, "Admin", live[0]["actor"], "the staff see the real name")
		assert.Equal(t, "Alice", live[0]["target"])
		assert.Equal(t, "ticket 3", live[0]["reason"])
		id := live[0]["id"].(string)

		staff := b.signedIn("staff")
		assert.Equal(t, http.StatusForbidden, staff.get("/admin/loginas/live", jsonAccept).status)
		r = staff.post("/admin/loginas/access/end", staff.withToken(url.Values{"impersonation": {id}}), jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.True(t, admin.state().Impersonated, "staff may not end it")

		page := a.clientWith(nil)
		page.signIn("root")
		html := page.get("/live").body
		assert.Contains(t, html, "Live impersonations")
		assert.Contains(t, html, `name="impersonation" value="`+id+`"`)

		r = root.post("/admin/loginas/access/end", root.withToken(url.Values{"impersonation": {id}}), jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, true, r.jsonBody(t)["ended"])
		s := admin.state()
		assert.False(t, s.Impersonated, "ended on instance B, signed out on instance A")
		assert.Nil(t, s.User)
		assert.Contains(t, admin.flashes(), msgEnded)
		e := b.audit.only(t, loginas.ActionEnd, loginas.CauseEndedByAdmin)
		assert.Equal(t, "admin", e.ActorID)
		assert.Equal(t, "alice", e.TargetID)
		assert.Equal(t, "ended by root (Root)", e.Detail, "the event names who ended it")
	})
}

// The person whose account is in use sees it on every page, with an End
// access button that ends it at once; the actor then learns the person
// ended it.
func TestPersonEndsAccess(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := partialApp(t, st)
		admin, alice, bob := a.client(), a.client(), a.client()
		admin.signIn("admin")
		admin.mustSwitch("alice", url.Values{"reason": {"ticket 4"}})
		alice.signIn("alice")
		bob.signIn("bob")

		page := alice.get("/banner").body
		assert.Contains(t, page, "Admin is signed in to your account right now.")
		assert.Contains(t, page, "ticket 4")
		assert.Contains(t, page, "End access")
		assert.Empty(t, inlineCode.FindString(page))
		inUse := alice.banner().InUse
		require.Len(t, inUse, 1)
		id := inUse[0].ID

		r := bob.post("/admin/loginas/access/end", bob.withToken(url.Values{"impersonation": {id}}), jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status, "bob cannot end an impersonation of alice")
		r = alice.post("/admin/loginas/access/end", url.Values{"impersonation": {id}}, jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status, "the token is needed")
		r = alice.post("/admin/loginas/access/end", alice.withToken(url.Values{"impersonation": {id}}), header("Referer", a.origin()+"/account"))
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		assert.Equal(t, "/account", r.location())
		assert.Equal(t, []string{"Admin is no longer signed in as Alice."}, alice.flashes())

		s := admin.state()
		assert.False(t, s.Impersonated)
		assert.Contains(t, admin.flashes(), "Alice ended your access to their account, so you have been signed out. Please sign in again.")
		e := a.audit.only(t, loginas.ActionEnd, loginas.CauseEndedByTarget)
		assert.Equal(t, "admin", e.ActorID)
		assert.Equal(t, "alice", e.TargetID)

		// While impersonating, the actor cannot end access "as alice".
		admin.signIn("admin")
		admin.mustSwitch("alice")
		id = alice.banner().InUse[0].ID
		r = admin.post("/admin/loginas/access/end", admin.withToken(url.Values{"impersonation": {id}}), jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.True(t, admin.state().Impersonated)
	})
}

// With RequireConsent a switch needs the target's live grant, which caps
// the deadline; withdrawing it ends the live impersonations of the person.
func TestConsent(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := partialApp(t, st, withOptions(func(o *loginas.Options) {
			o.RequireConsent = true
			o.MaxDuration = 2 * time.Hour
		}))
		admin, alice := a.client(), a.client()
		admin.signIn("admin")
		alice.signIn("alice")

		r := admin.switchTo("alice", nil, jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "Alice has not allowed access to their account.", r.jsonBody(t)["error"])
		a.audit.only(t, loginas.ActionDenied, loginas.CauseNoConsent)
		assert.Empty(t, admin.get("/button/alice").body, "no button without consent")

		form := alice.get("/consent").body
		assert.Contains(t, form, `<option value="1h0m0s">1 hour</option>`)
		assert.Contains(t, form, `<option value="168h0m0s">7 days</option>`)
		assert.Empty(t, inlineCode.FindString(form))
		r = alice.post("/admin/loginas/access/consent", alice.withToken(url.Values{"duration": {"5m"}}), jsonAccept)
		assert.Equal(t, http.StatusBadRequest, r.status, "only the offered periods")
		r = alice.post("/admin/loginas/access/consent", alice.withToken(url.Values{"duration": {"1h0m0s"}}), jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		granted := a.audit.only(t, loginas.ActionConsent, loginas.CauseGranted)
		assert.Equal(t, a.clock.Now().Add(time.Hour), granted.Deadline)
		assert.Equal(t, true, alice.accessJSON()["consent"].(map[string]any)["granted"])

		r = admin.switchTo("alice", nil, jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, a.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339), r.jsonBody(t)["deadline"], "the grant caps the deadline")

		// The actor may not grant consent "as alice".
		r = admin.post("/admin/loginas/access/consent", admin.withToken(url.Values{"duration": {"24h0m0s"}}), jsonAccept)
		assert.Equal(t, http.StatusForbidden, r.status)

		r = alice.post("/admin/loginas/access/consent", alice.withToken(url.Values{"withdraw": {"1"}}), jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.False(t, admin.state().Impersonated, "withdrawing ends the live impersonation")
		assert.Contains(t, admin.flashes(), "Alice withdrew their consent, so your session as them has ended. Please sign in again.")
		a.audit.only(t, loginas.ActionEnd, loginas.CauseConsentWithdrawn)
		a.audit.only(t, loginas.ActionConsent, loginas.CauseWithdrawn)
		admin.signIn("admin")
		assert.Equal(t, http.StatusForbidden, admin.switchTo("alice", nil, jsonAccept).status)
	})
}

// RequireConsent needs somewhere to keep the grants.
func TestRequireConsentNeedsConsents(t *testing.T) {
	t.Parallel()
	opts := validOptions()
	opts.RequireConsent = true
	opts.Store = storeOnly{loginas.NewMemoryStore()}
	_, err := loginas.New(opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Options.RequireConsent needs a Store or History that implements loginas.Consents")
}

// storeOnly hides every method of a Store but the Store interface's.
type storeOnly struct{ loginas.Store }

// The person's side is translated too.
func TestPersonSideIsTranslated(t *testing.T) {
	t.Parallel()
	a := partialApp(t, cookieStore)
	admin, alice := a.client(), a.client()
	admin.signIn("admin")
	admin.mustSwitch("alice")
	alice.signIn("alice")
	de := alice.get("/banner", header("Accept-Language", "de")).body
	assert.Contains(t, de, "Admin ist gerade in Ihrem Konto angemeldet.")
	assert.Contains(t, de, "Zugriff beenden")
	fr := alice.get("/access", header("Accept-Language", "fr")).body
	assert.Contains(t, fr, "Qui a utilisé votre compte")
	assert.True(t, strings.Contains(fr, "toujours en cours"), fr)
}
