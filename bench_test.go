package loginas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-contrib/sessions/memstore"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// The rig below is an app as small as a real one can be: gin,
// gin-contrib/sessions, an in-memory user directory and a few routes. The
// benchmarks in this file and the fault, concurrency and HTTP fuzz tests all
// build on it.

const rigSessionKey = "uid"

var (
	rigSecret  = []byte("rig-secret-0123456789abcdef0123456789abcdef")
	rigHashKey = []byte("rig-hash-key-0123456789abcdef0123456789abcdef")
)

// rigStoreKinds are the session stores every scenario runs against: a
// signed cookie holding the whole session, and a server-side store keeping
// it in memory under an ID.
var rigStoreKinds = []string{"cookie", "memstore"}

// The seeded users: two superusers, a staff member, two regular users and a
// disabled one; extra regular users get IDs from 7 up.
const (
	rigAdmin = "1"
	rigRoot  = "2"
	rigStaff = "3"
	rigAlice = "4"
	rigBob   = "5"
	rigCarol = "6"
)

var errRigDirectoryDown = errors.New("rig: user directory is down")

// rigDirectory is an in-memory user store. Its map is never written after
// construction, so lookups need no lock; failing makes every lookup fail.
type rigDirectory struct {
	users   map[string]loginas.User
	failing atomic.Bool
}

func newRigDirectory(extra int) *rigDirectory {
	d := &rigDirectory{users: map[string]loginas.User{}}
	add := func(id, name string, superuser, active bool) {
		d.users[id] = loginas.User{ID: id, Name: name, Superuser: superuser, Active: active}
	}
	add(rigAdmin, "admin", true, true)
	add(rigRoot, "root", true, true)
	add(rigStaff, "staff", false, true)
	add(rigAlice, "alice", false, true)
	add(rigBob, "bob", false, true)
	add(rigCarol, "carol", false, false)
	for i := range extra {
		id := strconv.Itoa(7 + i)
		add(id, "user"+id, false, true)
	}
	return d
}

func (d *rigDirectory) find(_ context.Context, id string) (loginas.User, error) {
	if d.failing.Load() {
		return loginas.User{}, errRigDirectoryDown
	}
	u, ok := d.users[id]
	if !ok {
		return loginas.User{}, loginas.ErrUserNotFound
	}
	return u, nil
}

func newRigStore(tb testing.TB, kind string) sessions.Store {
	tb.Helper()
	var s sessions.Store
	switch kind {
	case "cookie":
		s = cookie.NewStore(rigHashKey)
	case "memstore":
		s = memstore.NewStore(rigHashKey)
	default:
		tb.Fatalf("unknown store kind %q", kind)
	}
	s.Options(sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return s
}

// rigApp is one engine: the sessions middleware, optionally the plugin, and
// the app's routes.
type rigApp struct {
	engine *gin.Engine
	plugin *loginas.Plugin // nil for the baseline app
	dir    *rigDirectory
}

var rigQuiet = slog.New(slog.DiscardHandler)

// newRigApp builds an app on store. With withPlugin false it is the
// baseline: the same routes without loginas. tweak may change the options.
func newRigApp(tb testing.TB, store sessions.Store, dir *rigDirectory, withPlugin bool, tweak func(*loginas.Options)) *rigApp {
	tb.Helper()
	gin.SetMode(gin.TestMode) // no route listing on stdout
	r := gin.New()
	r.Use(sessions.Sessions("rig", store))
	app := &rigApp{engine: r, dir: dir}
	if withPlugin {
		opts := loginas.Options{
			FindUser:   dir.find,
			SessionKey: rigSessionKey,
			Secret:     rigSecret,
			Logger:     rigQuiet,
		}
		if tweak != nil {
			tweak(&opts)
		}
		p, err := loginas.Register(r, opts)
		if err != nil {
			tb.Fatal(err)
		}
		app.plugin = p
	}
	r.POST("/signin", rigSignIn)
	r.POST("/signout", rigSignOut)
	r.GET("/page", rigPage)
	r.GET("/me", app.me)
	return app
}

// rigSignIn is the app's own sign-in, reduced to what matters here: the
// session starts over with the form's id as its user.
func rigSignIn(c *gin.Context) {
	s := sessions.Default(c)
	s.Clear()
	s.Set(rigSessionKey, c.PostForm("id"))
	if err := s.Save(); err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Redirect(http.StatusSeeOther, "/page")
}

// rigSignOut is the app's own sign-out.
func rigSignOut(c *gin.Context) {
	s := sessions.Default(c)
	s.Clear()
	if err := s.Save(); err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}

// rigPage is the route every request benchmark measures: it reads the
// signed-in user from the session and answers with the ID.
func rigPage(c *gin.Context) {
	uid, _ := sessions.Default(c).Get(rigSessionKey).(string)
	if uid == "" {
		c.String(http.StatusUnauthorized, "anonymous")
		return
	}
	c.String(http.StatusOK, uid)
}

// rigState is what GET /me reports: the raw session values and what the
// plugin made of them.
type rigState struct {
	User         string   `json:"user"`
	HasRecord    bool     `json:"has_record"`
	Impersonated bool     `json:"impersonated"`
	Actor        string   `json:"actor"`
	Target       string   `json:"target"`
	Token        string   `json:"token"`
	Flashes      []string `json:"flashes"`
}

// me reports the session's state and hands out a CSRF token, as a page
// with the banner or the button would; it shows and consumes the flash
// messages, as a layout does.
func (a *rigApp) me(c *gin.Context) {
	s := sessions.Default(c)
	var st rigState
	st.User, _ = s.Get(rigSessionKey).(string)
	_, st.HasRecord = s.Get(loginas.DefaultRecordKey).(string)
	st.Impersonated = c.GetBool(loginas.ContextKey)
	if imp, ok := loginas.Current(c); ok {
		st.Actor, st.Target = imp.Actor.ID, imp.Target.ID
	}
	if a.plugin != nil {
		st.Token = loginas.Token(c)
	}
	if flashes := s.Flashes(); len(flashes) > 0 {
		for _, f := range flashes {
			text, _ := f.(string)
			st.Flashes = append(st.Flashes, text)
		}
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
	}
	c.JSON(http.StatusOK, st)
}

// rigClient is a browser: a cookie jar, and redirects left to the caller.
type rigClient struct {
	tb   testing.TB
	base string
	http *http.Client
}

// rigServer serves app on a loopback port until the test ends.
func rigServer(tb testing.TB, app *rigApp) *httptest.Server {
	srv := httptest.NewServer(app.engine)
	tb.Cleanup(srv.Close)
	return srv
}

func newRigClientURL(tb testing.TB, base string) *rigClient {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &rigClient{tb: tb, base: base, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// post sends a same-origin form and returns the status. Transport errors
// are reported with Errorf (safe from any goroutine) and give status 0.
func (rc *rigClient) post(path string, form url.Values) int {
	req, err := http.NewRequest(http.MethodPost, rc.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		rc.tb.Errorf("POST %s: %v", path, err)
		return 0
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", rc.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := rc.http.Do(req)
	if err != nil {
		rc.tb.Errorf("POST %s: %v", path, err)
		return 0
	}
	rigDrain(resp)
	return resp.StatusCode
}

// state reads GET /me. It returns status 0 after a transport error.
func (rc *rigClient) state() (rigState, int) {
	var st rigState
	resp, err := rc.http.Get(rc.base + "/me")
	if err != nil {
		rc.tb.Errorf("GET /me: %v", err)
		return st, 0
	}
	defer rigDrain(resp)
	if resp.StatusCode == http.StatusOK {
		if err := rigDecode(resp, &st); err != nil {
			rc.tb.Errorf("GET /me: %v", err)
		}
	}
	return st, resp.StatusCode
}

func (rc *rigClient) signIn(id string) int {
	return rc.post("/signin", url.Values{"id": {id}})
}

// switchTo posts the login-as form for id with a fresh token.
func (rc *rigClient) switchTo(id string) int {
	st, _ := rc.state()
	return rc.post("/admin/loginas/"+url.PathEscape(id), url.Values{"loginas_csrf": {st.Token}})
}

// returnBack posts the banner's logout form with a fresh token.
func (rc *rigClient) returnBack() int {
	st, _ := rc.state()
	return rc.post("/admin/loginas/logout", url.Values{"loginas_csrf": {st.Token}})
}

// url is the client's base URL, for its cookie jar.
func (rc *rigClient) url() *url.URL {
	u, err := url.Parse(rc.base)
	if err != nil {
		rc.tb.Fatal(err)
	}
	return u
}

func rigDrain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

func rigDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func rigDecodeBytes(b []byte, v any) error {
	return json.Unmarshal(b, v)
}

// cookieHeader returns what a browser would send back after rec.
func rigCookieHeader(rec *httptest.ResponseRecorder) string {
	var parts []string
	for _, c := range rec.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
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

// benchSignIn signs id in on app and returns the session as it is once the
// app has served a page, with a token for the plugin's forms.
func benchSignIn(tb testing.TB, app *rigApp, id string) benchSession {
	tb.Helper()
	rec := benchServe(app.engine, http.MethodPost, "/signin", "", url.Values{"id": {id}})
	if rec.Code != http.StatusSeeOther {
		tb.Fatalf("sign-in: status %d", rec.Code)
	}
	return benchSettle(tb, app, rigCookieHeader(rec))
}

// benchSignInOnly signs id in on app and returns the session as the app's
// own sign-in made it: no page has issued it a CSRF token yet, so the
// plugin keeps nothing in it.
func benchSignInOnly(tb testing.TB, app *rigApp, id string) benchSession {
	tb.Helper()
	rec := benchServe(app.engine, http.MethodPost, "/signin", "", url.Values{"id": {id}})
	if rec.Code != http.StatusSeeOther {
		tb.Fatalf("sign-in: status %d", rec.Code)
	}
	return benchSession{cookie: rigCookieHeader(rec)}
}

// benchSettle serves GET /me with cookieHdr until the session no longer
// changes (the first page after a switch or return shows and consumes its
// flash), and returns the settled session with a token.
func benchSettle(tb testing.TB, app *rigApp, cookieHdr string) benchSession {
	tb.Helper()
	for range 3 {
		rec := benchServe(app.engine, http.MethodGet, "/me", cookieHdr, nil)
		if rec.Code != http.StatusOK {
			tb.Fatalf("GET /me: status %d", rec.Code)
		}
		if next := rigCookieHeader(rec); next != "" {
			cookieHdr = next
			continue
		}
		var st rigState
		if err := rigDecodeBytes(rec.Body.Bytes(), &st); err != nil {
			tb.Fatal(err)
		}
		return benchSession{cookie: cookieHdr, token: st.Token}
	}
	tb.Fatal("the session keeps changing on GET /me")
	return benchSession{}
}

// benchImpersonate signs the admin in and switches to alice.
func benchImpersonate(tb testing.TB, app *rigApp) benchSession {
	tb.Helper()
	admin := benchSignIn(tb, app, rigAdmin)
	rec := benchServe(app.engine, http.MethodPost, "/admin/loginas/"+rigAlice, admin.cookie, url.Values{"loginas_csrf": {admin.token}})
	if rec.Code != http.StatusSeeOther {
		tb.Fatalf("login-as: status %d: %s", rec.Code, rec.Body)
	}
	return benchSettle(tb, app, rigCookieHeader(rec))
}

// benchPage measures GET /page with a settled session.
func benchPage(b *testing.B, app *rigApp, s benchSession, wantBody string) {
	rec := benchServe(app.engine, http.MethodGet, "/page", s.cookie, nil)
	if rec.Code != http.StatusOK || rec.Body.String() != wantBody || rec.Header().Get("Set-Cookie") != "" {
		b.Fatalf("GET /page: status %d, body %q, Set-Cookie %q", rec.Code, rec.Body, rec.Header().Get("Set-Cookie"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec := benchServe(app.engine, http.MethodGet, "/page", s.cookie, nil)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /page: status %d", rec.Code)
		}
	}
}

// BenchmarkRequest measures one GET of an app page: without the plugin
// (baseline), with it on a normal signed-in session, and with it on an
// impersonated session (record check and revalidation).
func BenchmarkRequest(b *testing.B) {
	for _, kind := range rigStoreKinds {
		b.Run("store="+kind+"/case=baseline", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), false, nil)
			benchPage(b, app, benchSignIn(b, app, rigAdmin), rigAdmin)
		})
		b.Run("store="+kind+"/case=signed-in", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), true, nil)
			benchPage(b, app, benchSignIn(b, app, rigAdmin), rigAdmin)
		})
		b.Run("store="+kind+"/case=impersonated", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), true, nil)
			benchPage(b, app, benchImpersonate(b, app), rigAlice)
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
	for _, kind := range rigStoreKinds {
		for _, c := range []struct {
			name string
			make func(tb testing.TB, app *rigApp) benchSession
			user string
		}{
			{"signed-in", func(tb testing.TB, app *rigApp) benchSession { return benchSignInOnly(tb, app, rigAdmin) }, rigAdmin},
			{"signed-in-token", func(tb testing.TB, app *rigApp) benchSession { return benchSignIn(tb, app, rigAdmin) }, rigAdmin},
			{"impersonated", benchImpersonate, rigAlice},
		} {
			b.Run("store="+kind+"/case="+c.name, func(b *testing.B) {
				store, dir := newRigStore(b, kind), newRigDirectory(0)
				without := newRigApp(b, store, dir, false, nil)
				with := newRigApp(b, store, dir, true, nil)
				pluginSession := c.make(b, with)
				sides := []struct {
					app     *rigApp
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
func benchSessions(kind string, n int, newSession func() benchSession) []benchSession {
	out := make([]benchSession, n)
	if kind == "cookie" {
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
	for _, kind := range rigStoreKinds {
		b.Run("store="+kind+"/case=baseline", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), false, nil)
			form := url.Values{"id": {rigAdmin}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/signin", "", form)
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("sign-in: status %d", rec.Code)
				}
			}
		})
		b.Run("store="+kind+"/case=loginas", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), true, nil)
			admins := benchSessions(kind, b.N, func() benchSession { return benchSignIn(b, app, rigAdmin) })
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/admin/loginas/"+rigAlice, admins[i].cookie, url.Values{"loginas_csrf": {admins[i].token}})
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
	for _, kind := range rigStoreKinds {
		b.Run("store="+kind+"/case=baseline", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), false, nil)
			s := benchSignIn(b, app, rigAdmin)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec := benchServe(app.engine, http.MethodPost, "/signout", s.cookie, url.Values{})
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("sign-out: status %d", rec.Code)
				}
			}
		})
		b.Run("store="+kind+"/case=logout", func(b *testing.B) {
			app := newRigApp(b, newRigStore(b, kind), newRigDirectory(0), true, nil)
			imps := benchSessions(kind, b.N, func() benchSession { return benchImpersonate(b, app) })
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
