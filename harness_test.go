package loginas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-contrib/sessions/memstore"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// The app under test keeps the signed-in user's ID under this session key,
// in a session named sessionName.
const (
	userKey     = "user_id"
	sessionName = "app"
)

var (
	testSecret  = []byte("test-secret-0123456789-abcdefghijklmnop")
	otherSecret = []byte("another-secret-9876543210-zyxwvutsrqpon")
	storeKey    = []byte("session-store-key-0123456789abcdef")
)

// storeKind is one of the gin-contrib/sessions stores every flow runs on.
type storeKind struct {
	name string
	// serverSide is true when the cookie carries only a session ID and the
	// values stay on the server.
	serverSide bool
	make       func() sessions.Store
}

var sessionStores = []storeKind{
	{name: "cookie", make: func() sessions.Store { return cookie.NewStore(storeKey) }},
	{name: "memstore", serverSide: true, make: func() sessions.Store { return memstore.NewStore(storeKey) }},
}

var (
	cookieStore = sessionStores[0]
	memStore    = sessionStores[1]
)

// eachStore runs f once per session store, in parallel subtests.
func eachStore(t *testing.T, f func(t *testing.T, st storeKind)) {
	t.Helper()
	for _, st := range sessionStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			f(t, st)
		})
	}
}

// userStore is the app's user table: an in-memory map that tests change
// while sessions are live.
type userStore struct {
	mu        sync.Mutex
	users     map[string]loginas.User
	lastLogin map[string]int // how many times UpdateLastLogin ran per user
}

// Seeded users. Data holds the app's own role, read by custom hooks.
func newUserStore() *userStore {
	s := &userStore{users: map[string]loginas.User{}, lastLogin: map[string]int{}}
	for _, u := range []loginas.User{
		{ID: "admin", Name: "Admin", Superuser: true, Active: true, Data: "superuser"},
		{ID: "root", Name: "Root", Superuser: true, Active: true, Data: "superuser"},
		{ID: "staff", Name: "Staff", Active: true, Data: "staff"},
		{ID: "support", Name: "Support", Active: true, Data: "support"},
		{ID: "alice", Name: "Alice", Active: true, Data: "user"},
		{ID: "bob", Name: "Bob", Active: true, Data: "user"},
		{ID: "carol", Name: "Carol", Active: false, Data: "user"},
		{ID: "nameless", Active: true, Data: "user"},
		{ID: "mallory", Name: `<script>alert("x")</script>`, Active: true, Data: "user"},
		{ID: "logout", Name: "Lou Gout", Active: true, Data: "user"},
	} {
		s.users[u.ID] = u
	}
	return s
}

func (s *userStore) find(_ context.Context, id string) (loginas.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return loginas.User{}, fmt.Errorf("user %q: %w", id, loginas.ErrUserNotFound)
	}
	return u, nil
}

func (s *userStore) get(id string) loginas.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[id]
}

func (s *userStore) update(id string, f func(u *loginas.User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	f(&u)
	s.users[id] = u
}

func (s *userStore) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
}

func (s *userStore) touch(_ *gin.Context, u loginas.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastLogin[u.ID]++
	return nil
}

func (s *userStore) logins(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastLogin[id]
}

// auditLog is a custom Options.Audit sink that keeps every event; with
// failStarts set it refuses start events.
type auditLog struct {
	mu         sync.Mutex
	events     []loginas.Event
	failStarts atomic.Bool
}

var errAuditDown = errors.New("test: the audit sink is down")

func (a *auditLog) sink(_ context.Context, e loginas.Event) error {
	if e.Action == loginas.ActionStart && a.failStarts.Load() {
		return errAuditDown
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

func (a *auditLog) all() []loginas.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// matching returns the events with the given action and cause ("" for any
// cause).
func (a *auditLog) matching(action loginas.Action, cause loginas.Cause) []loginas.Event {
	var out []loginas.Event
	for _, e := range a.all() {
		if e.Action == action && (cause == "" || e.Cause == cause) {
			out = append(out, e)
		}
	}
	return out
}

// only asserts that exactly one event has the action and cause, and
// returns it.
func (a *auditLog) only(t *testing.T, action loginas.Action, cause loginas.Cause) loginas.Event {
	t.Helper()
	got := a.matching(action, cause)
	require.Lenf(t, got, 1, "want one %s/%s event, have %+v", action, cause, a.all())
	return got[0]
}

// testClock is an Options.Clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testApp is a Gin app with sessions, the plugin, and routes that let a
// test sign in, read and edit its session.
type testApp struct {
	t      *testing.T
	store  storeKind
	engine *gin.Engine
	server *httptest.Server
	plugin *loginas.Plugin
	users  *userStore
	audit  *auditLog
	clock  *testClock
}

type appSetup struct {
	opts   loginas.Options
	cookie *sessions.Options
	routes []func(r *gin.Engine, p *loginas.Plugin)
	users  *userStore
	faults *faultStore
	engine []func(r *gin.Engine)
}

type appOption func(*appSetup)

// withOptions changes the plugin options before Register.
func withOptions(f func(o *loginas.Options)) appOption {
	return func(s *appSetup) { f(&s.opts) }
}

// withRoutes adds app routes after Register.
func withRoutes(f func(r *gin.Engine, p *loginas.Plugin)) appOption {
	return func(s *appSetup) { s.routes = append(s.routes, f) }
}

// withSessionOptions sets the session store's cookie options.
func withSessionOptions(o sessions.Options) appOption {
	return func(s *appSetup) { s.cookie = &o }
}

// withFaults puts f in front of the session store, so that a test can make
// its loads, saves and deletes fail.
func withFaults(f *faultStore) appOption {
	return func(s *appSetup) { s.faults = f }
}

// withEngine changes the engine before the sessions middleware and the
// plugin are added, as an app sets its templates first.
func withEngine(f func(r *gin.Engine)) appOption {
	return func(s *appSetup) { s.engine = append(s.engine, f) }
}

// withUsers makes the app use the given user table.
func withUsers(u *userStore) appOption {
	return func(s *appSetup) { s.users = u }
}

var quietLogger = slog.New(slog.DiscardHandler)

// logBuffer collects what a Logger writes, at every level, for tests that
// read it.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// baseOptions returns the options every test app starts from: the required
// fields, a recording audit sink, a test clock and a silent logger.
func baseOptions(users *userStore, audit *auditLog, clock *testClock) loginas.Options {
	return loginas.Options{
		FindUser:   users.find,
		SessionKey: userKey,
		Secret:     testSecret,
		Audit:      audit.sink,
		Clock:      clock.Now,
		Logger:     quietLogger,
	}
}

// newApp starts a test server running the plugin on the given store.
func newApp(t *testing.T, st storeKind, options ...appOption) *testApp {
	t.Helper()
	gin.SetMode(gin.TestMode)
	audit := &auditLog{}
	clock := newTestClock()
	setup := &appSetup{users: newUserStore()}
	setup.opts = baseOptions(setup.users, audit, clock)
	for _, o := range options {
		o(setup)
	}
	if setup.opts.FindUser == nil {
		setup.opts.FindUser = setup.users.find
	}

	r := gin.New()
	for _, f := range setup.engine {
		f(r)
	}
	store := st.make()
	if setup.cookie != nil {
		store.Options(*setup.cookie)
	}
	if setup.faults != nil {
		setup.faults.Store = store
		store = setup.faults
	}
	r.Use(sessions.Sessions(sessionName, store))
	p, err := loginas.Register(r, setup.opts)
	require.NoError(t, err)
	addTestRoutes(r, p)
	for _, f := range setup.routes {
		f(r, p)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &testApp{t: t, store: st, engine: r, server: srv, plugin: p, users: setup.users, audit: audit, clock: clock}
}

// impView is what the state route reports of an impersonation.
type impView struct {
	ID         string    `json:"id"`
	ActorID    string    `json:"actor_id"`
	ActorName  string    `json:"actor_name"`
	TargetID   string    `json:"target_id"`
	TargetName string    `json:"target_name"`
	Started    time.Time `json:"started"`
	Deadline   time.Time `json:"deadline"`
}

func viewOf(imp loginas.Impersonation, ok bool) *impView {
	if !ok {
		return nil
	}
	return &impView{
		ID: imp.ID, ActorID: imp.Actor.ID, ActorName: imp.Actor.Name,
		TargetID: imp.Target.ID, TargetName: imp.Target.Name,
		Started: imp.Started, Deadline: imp.Deadline,
	}
}

// state is what a request sees of its session and context.
type state struct {
	User         *string  `json:"user"` // nil when nobody is signed in
	SessionID    string   `json:"session_id"`
	Impersonated bool     `json:"impersonated"` // c.GetBool("is_impersonated")
	Helper       bool     `json:"helper"`       // loginas.IsImpersonated(c)
	Current      *impView `json:"current"`      // loginas.Current(c)
	FromContext  *impView `json:"from_context"` // loginas.FromContext(c.Request.Context())
	Extra        any      `json:"extra"`        // the app's own "extra" session value
	HasRecord    bool     `json:"has_record"`
}

func (s state) user() string {
	if s.User == nil {
		return ""
	}
	return *s.User
}

func addTestRoutes(r *gin.Engine, p *loginas.Plugin) {
	// The app's own sign-in, reduced to setting the user key.
	r.POST("/test/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set(userKey, c.PostForm("id"))
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	// The app's own sign-outs: one that deletes only its user key, and one
	// that clears the session.
	r.POST("/test/drop-user", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Delete(userKey)
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.POST("/test/clear", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Clear()
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	// The app's sign-out that renews the session, as RenewSession does.
	r.POST("/test/renew", func(c *gin.Context) {
		if err := loginas.RenewSession(c, nil); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/test/banner", func(c *gin.Context) {
		c.JSON(http.StatusOK, loginas.BannerFor(c))
	})
	r.GET("/test/csrf", func(c *gin.Context) {
		c.String(http.StatusOK, loginas.Token(c))
	})
	r.GET("/test/state", func(c *gin.Context) {
		s := sessions.Default(c)
		st := state{
			SessionID:    s.ID(),
			Impersonated: c.GetBool("is_impersonated"),
			Helper:       loginas.IsImpersonated(c),
			Current:      viewOf(loginas.Current(c)),
			FromContext:  viewOf(loginas.FromContext(c.Request.Context())),
			Extra:        s.Get("extra"),
			HasRecord:    s.Get(loginas.DefaultRecordKey) != nil,
		}
		if v := s.Get(userKey); v != nil {
			id := fmt.Sprint(v)
			st.User = &id
		}
		c.JSON(http.StatusOK, st)
	})
	r.GET("/test/flashes", func(c *gin.Context) {
		s := sessions.Default(c)
		out := []string{}
		for _, f := range s.Flashes() {
			out = append(out, fmt.Sprint(f))
		}
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, out)
	})
	// Sets (or with kind=delete removes) one session value, as a tampering
	// client or the app itself might.
	r.POST("/test/set", func(c *gin.Context) {
		s := sessions.Default(c)
		key, value := c.PostForm("key"), c.PostForm("value")
		switch c.PostForm("kind") {
		case "int":
			var n int
			_, _ = fmt.Sscan(value, &n)
			s.Set(key, n)
		case "delete":
			s.Delete(key)
		default:
			s.Set(key, value)
		}
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/test/get", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"value": sessions.Default(c).Get(c.Query("key"))})
	})
}

// reply is a response, read in full.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r *reply) location() string { return r.header.Get("Location") }

// jsonBody decodes the body as a JSON object.
func (r *reply) jsonBody(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoErrorf(t, json.Unmarshal([]byte(r.body), &m), "body %q", r.body)
	return m
}

// client is one browser: its own cookie jar, redirects not followed.
type client struct {
	t   *testing.T
	app *testApp
	hc  *http.Client
}

func (a *testApp) client() *client {
	a.t.Helper()
	return &client{t: a.t, app: a, hc: newBrowser(a.t)}
}

// clientWith returns a new browser holding a copy of the given cookies.
func (a *testApp) clientWith(cookies []*http.Cookie) *client {
	c := a.client()
	u, _ := url.Parse(a.server.URL)
	c.hc.Jar.SetCookies(u, cookies)
	return c
}

// cookies returns the cookies the browser holds for the app.
func (c *client) cookies() []*http.Cookie {
	u, _ := url.Parse(c.app.server.URL)
	var out []*http.Cookie
	for _, k := range c.hc.Jar.Cookies(u) {
		out = append(out, &http.Cookie{Name: k.Name, Value: k.Value})
	}
	return out
}

// header builds request headers from name, value pairs.
func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var jsonAccept = header("Accept", "application/json")

func (c *client) do(method, path string, form url.Values, h http.Header) *reply {
	c.t.Helper()
	if form == nil {
		return c.send(method, path, nil, h)
	}
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(method, path, strings.NewReader(form.Encode()), h)
}

// doRaw sends body as it is.
func (c *client) doRaw(method, path, body string, h http.Header) *reply {
	c.t.Helper()
	return c.send(method, path, strings.NewReader(body), h)
}

func (c *client) send(method, path string, body io.Reader, h http.Header) *reply {
	c.t.Helper()
	req, err := http.NewRequest(method, c.app.server.URL+path, body)
	require.NoError(c.t, err)
	for k, vs := range h {
		for _, v := range vs {
			if strings.EqualFold(k, "Host") {
				req.Host = v
				continue
			}
			req.Header.Add(k, v)
		}
	}
	res, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return &reply{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string, h ...http.Header) *reply {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, merge(h))
}

func (c *client) post(path string, form url.Values, h ...http.Header) *reply {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, path, form, merge(h))
}

func merge(hs []http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, vs := range h {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

// signIn signs the browser in as id through the app's own sign-in.
func (c *client) signIn(id string) {
	c.t.Helper()
	r := c.post("/test/login", url.Values{"id": {id}})
	require.Equal(c.t, http.StatusNoContent, r.status)
}

// token fetches a fresh CSRF token for the plugin's routes.
func (c *client) token() string {
	c.t.Helper()
	r := c.get("/test/csrf")
	require.Equal(c.t, http.StatusOK, r.status)
	return r.body
}

// withToken returns form plus a fresh CSRF token.
func (c *client) withToken(form url.Values) url.Values {
	c.t.Helper()
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	out.Set(loginas.CSRFField, c.token())
	return out
}

// switchTo posts the login-as form for id with a valid token.
func (c *client) switchTo(id string, form url.Values, h ...http.Header) *reply {
	c.t.Helper()
	return c.post(c.app.plugin.LoginAsURL(id), c.withToken(form), h...)
}

// mustSwitch switches to id, with the form's fields if one is given, and
// checks that it worked.
func (c *client) mustSwitch(id string, form ...url.Values) {
	c.t.Helper()
	var fields url.Values
	if len(form) > 0 {
		fields = form[0]
	}
	r := c.switchTo(id, fields)
	require.Equalf(c.t, http.StatusSeeOther, r.status, "switch to %s: %s", id, r.body)
	st := c.state()
	require.Equal(c.t, id, st.user())
	require.True(c.t, st.Impersonated)
}

// logout posts the logout form with a valid token.
func (c *client) logout(form url.Values, h ...http.Header) *reply {
	c.t.Helper()
	return c.post(c.app.plugin.LogoutURL(), c.withToken(form), h...)
}

func (c *client) state() state {
	c.t.Helper()
	r := c.get("/test/state")
	require.Equal(c.t, http.StatusOK, r.status, r.body)
	var st state
	require.NoError(c.t, json.Unmarshal([]byte(r.body), &st))
	return st
}

// flashes reads and consumes the session's flash messages.
func (c *client) flashes() []string {
	c.t.Helper()
	r := c.get("/test/flashes")
	require.Equal(c.t, http.StatusOK, r.status, r.body)
	var out []string
	require.NoError(c.t, json.Unmarshal([]byte(r.body), &out))
	return out
}

// setValue sets one session value through the app.
func (c *client) setValue(key, value, kind string) {
	c.t.Helper()
	r := c.post("/test/set", url.Values{"key": {key}, "value": {value}, "kind": {kind}})
	require.Equal(c.t, http.StatusNoContent, r.status)
}

// sessionValue reads one session value through the app.
func (c *client) sessionValue(key string) any {
	c.t.Helper()
	r := c.get("/test/get?key=" + url.QueryEscape(key))
	require.Equal(c.t, http.StatusOK, r.status)
	return r.jsonBody(c.t)["value"]
}

// origin is the app's own origin, as a browser would send it.
func (a *testApp) origin() string { return a.server.URL }

// renderRoute adds GET path rendering the named partial of set with data.
func renderRoute(path string, set *template.Template, name string, data func(c *gin.Context, p *loginas.Plugin) any) appOption {
	return withRoutes(func(r *gin.Engine, p *loginas.Plugin) {
		r.GET(path, func(c *gin.Context) {
			var b strings.Builder
			if err := set.ExecuteTemplate(&b, name, data(c, p)); err != nil {
				c.String(http.StatusInternalServerError, "template: %v", err)
				return
			}
			c.String(http.StatusOK, b.String())
		})
	})
}

func jsonUnmarshal(body string, v any) error { return json.Unmarshal([]byte(body), v) }

// errRefused is a plain error a permission hook returns.
var errRefused = errors.New("refused by the app")

// newServer serves h on a loopback port for the test's lifetime and returns
// its base URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newBrowser returns an HTTP client with a cookie jar that does not follow
// redirects.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	// Each browser has its own transport: httptest.Server.Close closes the
	// idle connections of http.DefaultTransport, which would break the
	// clients of tests running in parallel.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

