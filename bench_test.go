package loginas_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// The benchmarks run on harness apps as small as a real one can be
// (benchApp): gin, the sessions middleware, optionally the plugin, and four
// routes. The timed requests go straight to the engine with the Cookie
// header of a session made beforehand (benchServe), so that only the app is
// timed.

// benchCookie are the session cookie's attributes in the benchmarks.
var benchCookie = sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}

// benchApp builds the app under benchmark on st, in process: the plugin
// (unless withPlugin is false: the baseline, with the same routes) with its
// default audit sink and clock, and benchRoutes only.
func benchApp(tb testing.TB, st storeKind, withPlugin bool) *testApp {
	tb.Helper()
	options := []appOption{
		withoutTestRoutes(),
		withRoutes(benchRoutes),
		withSessionOptions(benchCookie),
		withOptions(func(o *loginas.Options) { o.Audit, o.Clock = nil, nil }),
	}
	if !withPlugin {
		options = append(options, withoutPlugin())
	}
	return buildApp(tb, st, options...)
}

// benchRoutes are the app's own routes: a sign-in that starts the session
// over, a sign-out, the page the request benchmarks time, and a page with
// the banner or the button (showPage) that hands out a token.
func benchRoutes(r *gin.Engine, _ *loginas.Plugin) {
	r.POST("/signin", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Clear()
		s.Set(userKey, c.PostForm("id"))
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Redirect(http.StatusSeeOther, "/page")
	})
	r.POST("/signout", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Clear()
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Redirect(http.StatusSeeOther, "/")
	})
	// It reads the signed-in user from the session and answers with the ID.
	r.GET("/page", func(c *gin.Context) {
		uid, _ := sessions.Default(c).Get(userKey).(string)
		if uid == "" {
			c.String(http.StatusUnauthorized, "anonymous")
			return
		}
		c.String(http.StatusOK, uid)
	})
	r.GET("/me", showPage)
}

// benchSession is a session captured for replay: its Cookie header and a
// CSRF token valid for it.
type benchSession struct {
	cookie string
	token  string
}

// benchServe sends one request through the engine, as a browser with the
// given Cookie header would, and returns the recorder.
func benchServe(h http.Handler, method, target, cookieHdr string, form url.Values) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if cookieHdr != "" {
		req.Header.Set("Cookie", cookieHdr)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// benchClient returns a browser of a signed in as id through the app's own
// sign-in. No page has given its session a token yet, so the plugin keeps
// nothing in it.
func benchClient(tb testing.TB, a *testApp, id string) *client {
	tb.Helper()
	c := a.clientFor(tb)
	if r := c.post("/signin", url.Values{"id": {id}}); r.status != http.StatusSeeOther {
		tb.Fatalf("sign-in: status %d", r.status)
	}
	return c
}

// benchSettle reads GET /me until the session no longer changes (the first
// page after a sign-in stores what tokens are bound to, the first after a
// switch or return shows and consumes its flash), and returns the settled
// session with a token.
func benchSettle(tb testing.TB, c *client) benchSession {
	tb.Helper()
	for range 3 {
		r := c.get("/me")
		if r.status != http.StatusOK {
			tb.Fatalf("GET /me: status %d", r.status)
		}
		if len(r.header.Values("Set-Cookie")) > 0 {
			continue
		}
		var page pageView
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			tb.Fatal(err)
		}
		return benchSession{cookie: cookieHeader(c.cookies()), token: page.Token}
	}
	tb.Fatal("the session keeps changing on GET /me")
	return benchSession{}
}

// benchSignIn signs id in on a and returns the settled session.
func benchSignIn(tb testing.TB, a *testApp, id string) benchSession {
	tb.Helper()
	return benchSettle(tb, benchClient(tb, a, id))
}

// benchImpersonate signs the admin in, switches to alice and returns the
// settled session.
func benchImpersonate(tb testing.TB, a *testApp) benchSession {
	tb.Helper()
	c := benchClient(tb, a, "admin")
	admin := benchSettle(tb, c)
	if r := c.post("/admin/loginas/alice", tokenForm(admin.token)); r.status != http.StatusSeeOther {
		tb.Fatalf("login-as: status %d: %s", r.status, r.body)
	}
	return benchSettle(tb, c)
}

// benchPage measures GET /page with a settled session.
func benchPage(b *testing.B, a *testApp, s benchSession, wantBody string) {
	rec := benchServe(a.engine, http.MethodGet, "/page", s.cookie, nil)
	if rec.Code != http.StatusOK || rec.Body.String() != wantBody || rec.Header().Get("Set-Cookie") != "" {
		b.Fatalf("GET /page: status %d, body %q, Set-Cookie %q", rec.Code, rec.Body, rec.Header().Get("Set-Cookie"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec := benchServe(a.engine, http.MethodGet, "/page", s.cookie, nil)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /page: status %d", rec.Code)
		}
	}
}

// BenchmarkRequest measures one GET of an app page: without the plugin
// (baseline), with it on a session as the app's own sign-in made it
// (signed-in), on the same after a page issued it a CSRF token
// (signed-in-token), and on an impersonated session (record check, Store
// lookup and revalidation).
func BenchmarkRequest(b *testing.B) {
	for _, st := range sessionStores {
		b.Run("store="+st.name+"/case=baseline", func(b *testing.B) {
			app := benchApp(b, st, false)
			benchPage(b, app, benchSignIn(b, app, "admin"), "admin")
		})
		b.Run("store="+st.name+"/case=signed-in", func(b *testing.B) {
			app := benchApp(b, st, true)
			benchPage(b, app, benchSession{cookie: cookieHeader(benchClient(b, app, "admin").cookies())}, "admin")
		})
		b.Run("store="+st.name+"/case=signed-in-token", func(b *testing.B) {
			app := benchApp(b, st, true)
			benchPage(b, app, benchSignIn(b, app, "admin"), "admin")
		})
		b.Run("store="+st.name+"/case=impersonated", func(b *testing.B) {
			app := benchApp(b, st, true)
			benchPage(b, app, benchImpersonate(b, app), "alice")
		})
	}
}

// BenchmarkRequestPaired measures the same thing as BenchmarkRequest with
// the sides interleaved in one loop, so that the load of a shared machine
// falls on all of them alike. Each iteration serves, in rotating order:
//
//   - base: the app without the plugin, with its own signed-in session;
//   - values: the same app without the plugin, given the session the plugin
//     made (with the record when impersonating, and whatever else the
//     plugin keeps in a session): what the session store spends on the
//     plugin's values;
//   - plugin: the app with the plugin and that session.
//
// It reports the median time of each side and, relative to base: extra-%
// (plugin), values-% (values) and code-% (plugin - values: the plugin's own
// code). The cases: signed-in, a session as the app's own sign-in made it;
// signed-in-token, the same after a page issued it a CSRF token (the
// session then holds the random value tokens are bound to); impersonated.
func BenchmarkRequestPaired(b *testing.B) {
	for _, st := range sessionStores {
		for _, c := range []struct {
			name string
			make func(tb testing.TB, a *testApp) benchSession
			user string
		}{
			{"signed-in", func(tb testing.TB, a *testApp) benchSession {
				return benchSession{cookie: cookieHeader(benchClient(tb, a, "admin").cookies())}
			}, "admin"},
			{"signed-in-token", func(tb testing.TB, a *testApp) benchSession { return benchSignIn(tb, a, "admin") }, "admin"},
			{"impersonated", benchImpersonate, "alice"},
		} {
			b.Run("store="+st.name+"/case="+c.name, func(b *testing.B) {
				// The two apps share one session store.
				store, shared := st.make(), st
				shared.make = func() sessions.Store { return store }
				without, with := benchApp(b, shared, false), benchApp(b, shared, true)
				pluginSession := c.make(b, with)
				sides := []struct {
					app     *testApp
					session benchSession
					took    []time.Duration
				}{
					{app: without, session: benchSignIn(b, without, c.user)},
					{app: without, session: pluginSession},
					{app: with, session: pluginSession},
				}
				for i := range sides {
					sides[i].took = make([]time.Duration, 0, b.N)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					for j := range sides {
						side := &sides[(i+j)%len(sides)]
						start := time.Now()
						rec := benchServe(side.app.engine, http.MethodGet, "/page", side.session.cookie, nil)
						side.took = append(side.took, time.Since(start))
						if rec.Code != http.StatusOK || rec.Body.String() != c.user {
							b.Fatalf("GET /page: status %d, body %q", rec.Code, rec.Body)
						}
					}
				}
				b.StopTimer()
				base, values, plugin := medianNs(sides[0].took), medianNs(sides[1].took), medianNs(sides[2].took)
				b.ReportMetric(base, "base-ns")
				b.ReportMetric(values, "values-ns")
				b.ReportMetric(plugin, "plugin-ns")
				b.ReportMetric(100*(plugin/base-1), "extra-%")
				b.ReportMetric(100*(values/base-1), "values-%")
				b.ReportMetric(100*(plugin-values)/base, "code-%")
			})
		}
	}
}

func medianNs(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds())
}

// BenchmarkStoreEnds measures what the memory store costs per impersonation
// (start, look up as every request does, end) when it already holds n
// impersonations within their time limit, as an app does after n switches
// in the last hour. The cost should not grow with n.
func BenchmarkStoreEnds(b *testing.B) {
	for _, n := range []int{0, 2000, 20000} {
		b.Run("held="+strconv.Itoa(n), func(b *testing.B) {
			store := loginas.NewMemoryStore()
			ctx, now := context.Background(), time.Now()
			entry := func(i int) loginas.Entry {
				return loginas.Entry{ID: fmt.Sprintf("%032x", i), ActorID: "1", TargetID: "4", Started: now, Deadline: now.Add(time.Hour)}
			}
			for i := range n {
				if err := store.Start(ctx, entry(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e := entry(n + i)
				if err := store.Start(ctx, e); err != nil {
					b.Fatal(err)
				}
				if _, err := store.Entry(ctx, e.ID); err != nil {
					b.Fatal(err)
				}
				if ended, err := store.End(ctx, loginas.Selector{ID: e.ID}, loginas.CauseLogout, now); err != nil || len(ended) != 1 {
					b.Fatalf("End(%s) = %v, %v", e.ID, ended, err)
				}
			}
		})
	}
}

// benchSessions returns n sessions made by make. A cookie store's session
// can be replayed any number of times, so one is made and repeated; a
// server-side store's is spent by the switch (its ID is deleted), so each
// iteration needs its own.
func benchSessions(st storeKind, n int, newSession func() benchSession) []benchSession {
	out := make([]benchSession, n)
	if !st.serverSide {
		s := newSession()
		for i := range out {
			out[i] = s
		}
		return out
	}
	for i := range out {
		out[i] = newSession()
	}
	return out
}

// BenchmarkLoginAs measures the login-as route end to end (POST with the
// token, 303). Its baseline is the app's own sign-in (POST, session saved,
// 303) on the app without the plugin.
func BenchmarkLoginAs(b *testing.B) {
	for _, st := range sessionStores {
		b.Run("store="+st.name+"/case=baseline", func(b *testing.B) {
			app := benchApp(b, st, false)
			form := url.Values{"id": {"admin"}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/signin", "", form)
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("sign-in: status %d", rec.Code)
				}
			}
		})
		b.Run("store="+st.name+"/case=loginas", func(b *testing.B) {
			app := benchApp(b, st, true)
			admins := benchSessions(st, b.N, func() benchSession { return benchSignIn(b, app, "admin") })
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/admin/loginas/alice", admins[i].cookie, url.Values{"loginas_csrf": {admins[i].token}})
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("login-as: status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkLogout measures the logout route end to end on an impersonated
// session (POST with the token, actor restored, 303). Its baseline is the
// app's own sign-out (POST, session cleared and saved, 303) on the app
// without the plugin.
func BenchmarkLogout(b *testing.B) {
	for _, st := range sessionStores {
		b.Run("store="+st.name+"/case=baseline", func(b *testing.B) {
			app := benchApp(b, st, false)
			s := benchSignIn(b, app, "admin")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/signout", s.cookie, url.Values{})
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("sign-out: status %d", rec.Code)
				}
			}
		})
		b.Run("store="+st.name+"/case=logout", func(b *testing.B) {
			app := benchApp(b, st, true)
			imps := benchSessions(st, b.N, func() benchSession { return benchImpersonate(b, app) })
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/admin/loginas/logout", imps[i].cookie, url.Values{"loginas_csrf": {imps[i].token}})
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("logout: status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
