package loginas_test

import (
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// Requests without a signed-in user cannot grow the audit trail: they are
// counted in one log line a minute instead. A stale cookie replayed many
// times adds one event.
func TestAuditTrailCannotBeFlooded(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		logs := &logBuffer{}
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.Logger = logs.logger() }))
		paths := []string{a.plugin.LoginAsURL("alice"), a.plugin.LogoutURL(), "/admin/loginas/access/end", "/admin/loginas/x"}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				c := a.client()
				for j := range 250 {
					c.post(paths[(i+j)%len(paths)], url.Values{"reason": {"flood"}}, header("X-Forwarded-For", "10.0.0.1"))
				}
			})
		}
		wg.Wait()
		assert.Empty(t, a.audit.Events(), "2,000 cookieless POSTs add no audit event")
		assert.LessOrEqual(t, strings.Count(logs.String(), "refused requests without a signed-in user"), 1)

		c := a.signedIn("admin")
		c.mustSwitch("alice")
		stale := c.cookies()
		a.clock.advance(2 * loginas.DefaultMaxDuration)
		for range 200 {
			a.clientWith(stale).get("/test/state")
		}
		assert.Equal(t, []string{"start/", "end/expired"}, a.audit.summary(), "the replays add one end")
	})
}

// Every 4xx and 5xx answer goes through Options.ErrorHandler, JSON
// clients' included, with the status of its cause.
func TestEveryErrorGoesThroughErrorHandler(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		type seen struct {
			status int
			cause  loginas.Cause
			failed bool
		}
		var mu sync.Mutex
		var got []seen
		store := &faultyStore{Store: loginas.NewMemoryStore()}
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			o.Store = store
			o.ReasonRequired = true
			o.ErrorHandler = func(c *gin.Context, status int, err error) {
				var r *loginas.Refusal
				s := seen{status: status, failed: !errors.As(err, &r)}
				if r != nil {
					s.cause = r.Cause
				}
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
				c.AbortWithStatusJSON(status, gin.H{"handled": true})
			}
		}))
		last := func() seen {
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, got)
			return got[len(got)-1]
		}
		anonymous := a.client()
		for _, c := range []struct {
			name   string
			do     func() *reply
			status int
			cause  loginas.Cause
		}{
			{"anonymous", func() *reply { return anonymous.post(a.plugin.LoginAsURL("alice"), nil, jsonAccept) }, 403, loginas.CauseForbidden},
			{"method", func() *reply { return anonymous.get(a.plugin.LoginAsURL("alice"), jsonAccept) }, 405, loginas.CauseMethod},
			{"media type", func() *reply {
				return anonymous.doRaw(http.MethodPost, a.plugin.LogoutURL(), "<x/>", header("Content-Type", "text/xml", "Accept", "application/json"))
			}, 415, loginas.CauseUnsupportedMedia},
		} {
			r := c.do()
			assert.Equalf(t, c.status, r.status, "%s: %s", c.name, r.body)
			assert.JSONEqf(t, `{"handled": true}`, r.body, "%s", c.name)
			assert.Equalf(t, seen{status: c.status, cause: c.cause}, last(), "%s", c.name)
		}

		admin := a.signedIn("admin")
		for _, c := range []struct {
			name   string
			id     string
			form   url.Values
			status int
			cause  loginas.Cause
		}{
			{"bad ID", "..", url.Values{"reason": {"x"}}, 400, loginas.CauseBadID},
			{"unknown", "nobody", url.Values{"reason": {"x"}}, 404, loginas.CauseNotFound},
			{"self", "admin", url.Values{"reason": {"x"}}, 422, loginas.CauseSelf},
			{"superuser", "root", url.Values{"reason": {"x"}}, 403, loginas.CauseSuperuser},
			{"no reason", "alice", nil, 422, loginas.CauseReasonRequired},
		} {
			r := admin.switchTo(c.id, c.form, jsonAccept)
			assert.Equalf(t, c.status, r.status, "%s: %s", c.name, r.body)
			assert.Equalf(t, seen{status: c.status, cause: c.cause}, last(), "%s", c.name)
		}
		admin.mustSwitch("alice", url.Values{"reason": {"x"}})
		r := admin.switchTo("bob", url.Values{"reason": {"x"}}, jsonAccept)
		assert.Equal(t, http.StatusConflict, r.status)
		assert.Equal(t, seen{status: 409, cause: loginas.CauseNested}, last())

		store.failEntry.Store(true)
		r = admin.get("/test/state", jsonAccept)
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Equal(t, seen{status: 503, failed: true}, last())
	})
}

// A front end that posts JSON has its fields read: the reason is recorded,
// ReasonRequired is satisfied, next is followed, the token may come in the
// body. A body the plugin does not read is refused with 415, never dropped.
func TestJSONBodies(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.ReasonRequired = true }))
		c := a.signedIn("admin")
		postJSON := func(path, body string, h ...http.Header) *reply {
			return c.doRaw(http.MethodPost, path, body, merge(append(h, header("Content-Type", "application/json; charset=utf-8"))))
		}
		r := postJSON(a.plugin.LoginAsURL("alice"), `{"reason": "ticket 12", "next": "/orders"}`, header(loginas.CSRFHeader, c.token()))
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		assert.Equal(t, "/orders", r.location())
		assert.Equal(t, "ticket 12", a.audit.only(t, loginas.ActionStart, "").Reason)
		r = postJSON(a.plugin.LogoutURL(), `{"loginas_csrf": "`+c.token()+`"}`, jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)

		for _, bad := range []struct {
			name, contentType, body string
			status                  int
		}{
			{"no reason in JSON", "application/json", `{}`, http.StatusUnprocessableEntity},
			{"reason of the wrong type", "application/json", `{"reason": 42}`, http.StatusBadRequest},
			{"not an object", "application/json", `["ticket"]`, http.StatusBadRequest},
			{"two objects", "application/json", `{"reason": "a"}{"reason": "b"}`, http.StatusBadRequest},
			{"text", "text/plain", `reason=ticket`, http.StatusUnsupportedMediaType},
			{"no media type", "", `reason=ticket`, http.StatusUnsupportedMediaType},
		} {
			h := header(loginas.CSRFHeader, c.token(), "Accept", "application/json")
			if bad.contentType != "" {
				h.Set("Content-Type", bad.contentType)
			}
			r := c.doRaw(http.MethodPost, a.plugin.LoginAsURL("bob"), bad.body, h)
			assert.Equalf(t, bad.status, r.status, "%s: %s", bad.name, r.body)
			assert.Equalf(t, "admin", c.state().user(), "%s changed the session", bad.name)
		}

		// A multipart form, as fetch sends a FormData.
		var body strings.Builder
		w := multipart.NewWriter(&body)
		require.NoError(t, w.WriteField("reason", "ticket 13"))
		require.NoError(t, w.WriteField(loginas.CSRFField, c.token()))
		require.NoError(t, w.Close())
		r = c.doRaw(http.MethodPost, a.plugin.LoginAsURL("bob"), body.String(), header("Content-Type", w.FormDataContentType(), "Accept", "application/json"))
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, "ticket 13", a.audit.matching(loginas.ActionStart, "")[1].Reason)
	})
}
