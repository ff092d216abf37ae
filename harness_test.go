package loginas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-contrib/sessions/memstore"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
)

// The harness of the package's tests, benchmarks and fuzz targets: one app
// builder (buildApp, newApp), its user directory, audit log, clock and
// session store faults, and one browser (client) that talks to the app over
// HTTP or, for an app without a server, in process.

// The apps keep the signed-in user's ID under this session key, in a
// session named sessionName.
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

// userStore is the app's user directory, which tests change while sessions
// are live. Lookups take no lock (writers replace the map), so that
// benchmarks time the plugin, not the directory; while failing is set every
// lookup fails, as a directory that is down.
type userStore struct {
	users     atomic.Pointer[map[string]loginas.User]
	failing   atomic.Bool
	mu        sync.Mutex     // serialises the writers
	lastLogin map[string]int // how many times UpdateLastLogin ran per user
}

var errUsersDown = errors.New("test: the user directory is down")

// newUserStore returns a directory with the seeded users. Data holds the
// app's own role, read by custom hooks.
func newUserStore() *userStore {
	users := map[string]loginas.User{}
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
		users[u.ID] = u
	}
	s := &userStore{lastLogin: map[string]int{}}
	s.users.Store(&users)
	return s
}

// find is the apps' Options.FindUser.
func (s *userStore) find(_ context.Context, id string) (loginas.User, error) {
	if s.failing.Load() {
		return loginas.User{}, errUsersDown
	}
	u, ok := (*s.users.Load())[id]
	if !ok {
		return loginas.User{}, fmt.Errorf("user %q: %w", id, loginas.ErrUserNotFound)
	}
	return u, nil
}

// get returns the user with the given ID, for the app's own routes.
func (s *userStore) get(id string) loginas.User { return (*s.users.Load())[id] }

// update changes the user with the given ID, or adds one.
func (s *userStore) update(id string, f func(u *loginas.User)) {
	s.edit(func(users map[string]loginas.User) {
		u := users[id]
		f(&u)
		users[id] = u
	})
}

// remove deletes the user with the given ID.
func (s *userStore) remove(id string) {
	s.edit(func(users map[string]loginas.User) { delete(users, id) })
}

// edit replaces the map with an edited copy.
func (s *userStore) edit(f func(users map[string]loginas.User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	users := maps.Clone(*s.users.Load())
	f(users)
	s.users.Store(&users)
}

// touch is an Options.UpdateLastLogin that counts the calls per user.
func (s *userStore) touch(_ *gin.Context, u loginas.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastLogin[u.ID]++
	return nil
}

// logins returns how many times touch ran for id.
func (s *userStore) logins(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastLogin[id]
}

// auditLog is the apps' audit sink: a loginastest.Recorder whose Audit
// refuses start events while failStarts is set.
type auditLog struct {
	loginastest.Recorder
	failStarts atomic.Bool
}

var errAuditDown = errors.New("test: the audit sink is down")

// Audit records e, or refuses it if it is a start and failStarts is set.
func (a *auditLog) Audit(ctx context.Context, e loginas.Event) error {
	if e.Action == loginas.ActionStart && a.failStarts.Load() {
		return errAuditDown
	}
	return a.Recorder.Audit(ctx, e)
}

// matching returns the events with the given action and cause ("" for any
// cause).
func (a *auditLog) matching(action loginas.Action, cause loginas.Cause) []loginas.Event {
	var out []loginas.Event
	for _, e := range a.Events() {
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
	require.Lenf(t, got, 1, "want one %s/%s event, have:\n%s", action, cause, a)
	return got[0]
}

// summary lists the events as "action/cause".
func (a *auditLog) summary() []string {
	var out []string
	for _, e := range a.Events() {
		out = append(out, string(e.Action)+"/"+string(e.Cause))
	}
	return out
}

// testClock is an Options.Clock that tests move by hand; it stands still
// otherwise.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// newTestClock returns a clock that stands at 2026-03-02 10:00 UTC.
func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

// Now is the apps' Options.Clock.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock forward by d.
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// quietLogger is the apps' Logger: it drops everything.
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

// logger returns a Logger that writes to b at every level.
func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var errSessionsDown = errors.New("test: the session store is down")

// faultStore wraps the app's session store (withFaults) and fails on
// demand: every load, every save, or only the saves that delete a session
// (MaxAge < 0), which is how a server-side store is asked to forget an ID.
// It also keeps a copy of every server-side session it holds (sessionsOf).
type faultStore struct {
	sessions.Store
	failLoads   atomic.Bool
	failSaves   atomic.Bool
	failDeletes atomic.Bool

	mu   sync.Mutex
	live map[string]map[any]any // by session ID
}

// Get registers the session under this store, so that saving it comes back
// here rather than to the wrapped store.
func (f *faultStore) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(f, name)
}

// New loads the session, or fails while failLoads is set.
func (f *faultStore) New(r *http.Request, name string) (*gsessions.Session, error) {
	s, err := f.Store.New(r, name)
	if f.failLoads.Load() {
		s.ID, s.IsNew, s.Values = "", true, map[any]any{}
		return s, errSessionsDown
	}
	return s, err
}

// Save saves the session and keeps a copy of it, or fails while failSaves
// (or, for a deletion, failDeletes) is set.
func (f *faultStore) Save(r *http.Request, w http.ResponseWriter, s *gsessions.Session) error {
	deleting := s.Options != nil && s.Options.MaxAge < 0
	if f.failSaves.Load() || (deleting && f.failDeletes.Load()) {
		return errSessionsDown
	}
	id := s.ID
	values := maps.Clone(s.Values)
	if err := f.Store.Save(r, w, s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil {
		f.live = map[string]map[any]any{}
	}
	switch {
	case deleting:
		delete(f.live, id)
	case s.ID != "":
		f.live[s.ID] = values
	}
	return nil
}

// sessionsOf returns the server-side sessions whose user is id.
func (f *faultStore) sessionsOf(id string) []map[any]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[any]any
	for _, values := range f.live {
		if values[userKey] == id {
			out = append(out, values)
		}
	}
	return out
}

// testApp is a Gin app with sessions, the plugin and the test routes
// (addTestRoutes), and what it runs on.
type testApp struct {
	t      testing.TB
	engine *gin.Engine
	server *httptest.Server // nil for an app used in process
	plugin *loginas.Plugin  // nil for an app without the plugin
	users  *userStore
	audit  *auditLog
	clock  *testClock
	faults *faultStore // nil unless withFaults
}

// appSetup is what the options of buildApp change.
type appSetup struct {
	opts         loginas.Options
	cookie       *sessions.Options
	engine       []func(r *gin.Engine)
	routes       []func(r *gin.Engine, p *loginas.Plugin)
	users        *userStore
	faults       *faultStore
	byHand       func(r *gin.Engine, p *loginas.Plugin)
	noPlugin     bool
	noTestRoutes bool
}

// appOption changes an app before buildApp builds it.
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

// withFaults puts a faultStore (testApp.faults) in front of the session
// store, so that a test can make its loads, saves and deletes fail.
func withFaults() appOption {
	return func(s *appSetup) { s.faults = &faultStore{} }
}

// withEngine changes the engine before the sessions middleware and the
// plugin are added, as an app sets its templates first.
func withEngine(f func(r *gin.Engine)) appOption {
	return func(s *appSetup) { s.engine = append(s.engine, f) }
}

// withUsers makes the app use the given user directory, which another app
// may share.
func withUsers(u *userStore) appOption {
	return func(s *appSetup) { s.users = u }
}

// mountedByHand makes the plugin with New and mounts its middleware and,
// through mount, its handlers, instead of calling Register.
func mountedByHand(mount func(r *gin.Engine, p *loginas.Plugin)) appOption {
	return func(s *appSetup) { s.byHand = mount }
}

// withoutPlugin leaves the plugin out: the baseline app of the benchmarks.
func withoutPlugin() appOption {
	return func(s *appSetup) { s.noPlugin = true }
}

// withoutTestRoutes leaves out addTestRoutes, for an app whose routes are
// all its own (the benchmarks').
func withoutTestRoutes() appOption {
	return func(s *appSetup) { s.noTestRoutes = true }
}

// buildApp builds an app on a new store of kind st, without serving it:
// its clients talk to the engine in process. Unless the options say
// otherwise, the plugin runs on the app's users, audit log and clock, with
// testSecret and a silent logger.
func buildApp(tb testing.TB, st storeKind, options ...appOption) *testApp {
	tb.Helper()
	gin.SetMode(gin.TestMode)
	a := &testApp{t: tb, audit: &auditLog{}, clock: newTestClock()}
	setup := &appSetup{users: newUserStore(), opts: loginas.Options{
		SessionKey: userKey,
		Secret:     testSecret,
		Audit:      a.audit.Audit,
		Clock:      a.clock.Now,
		Logger:     quietLogger,
	}}
	for _, o := range options {
		o(setup)
	}
	if setup.opts.FindUser == nil {
		setup.opts.FindUser = setup.users.find
	}
	a.users, a.faults = setup.users, setup.faults

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
	var err error
	switch {
	case setup.noPlugin:
	case setup.byHand != nil:
		a.plugin, err = loginas.New(setup.opts)
		require.NoError(tb, err)
		r.Use(a.plugin.Middleware())
		setup.byHand(r, a.plugin)
	default:
		a.plugin, err = loginas.Register(r, setup.opts)
		require.NoError(tb, err)
	}
	if !setup.noTestRoutes {
		addTestRoutes(r, a.plugin)
	}
	for _, f := range setup.routes {
		f(r, a.plugin)
	}
	a.engine = r
	return a
}

// newApp builds an app (buildApp) and serves it on a loopback port for the
// test's lifetime.
func newApp(t *testing.T, st storeKind, options ...appOption) *testApp {
	t.Helper()
	a := buildApp(t, st, options...)
	a.server = httptest.NewServer(a.engine)
	t.Cleanup(a.server.Close)
	return a
}

// origin is the app's own origin, as a browser would send it.
func (a *testApp) origin() string { return a.server.URL }

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

// viewOf converts what loginas.Current and loginas.FromContext return.
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

// stateOf reads the request's state.
func stateOf(c *gin.Context) state {
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
	return st
}

// pageView is what a page of the app (showPage) reports.
type pageView struct {
	state
	Token   string   `json:"token"`
	Flashes []string `json:"flashes"`
}

// showPage is a page as the app's layout renders it: it reports the
// state, hands out a CSRF token as the button and the banner do, and shows
// and consumes the flash messages, saving the session only when there were
// some.
func showPage(c *gin.Context) {
	page := pageView{state: stateOf(c), Token: loginas.Token(c)}
	s := sessions.Default(c)
	if flashes := s.Flashes(); len(flashes) > 0 {
		for _, f := range flashes {
			page.Flashes = append(page.Flashes, fmt.Sprint(f))
		}
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
	}
	c.JSON(http.StatusOK, page)
}

// saved saves the session and answers 204, or 500 if the store fails.
func saved(c *gin.Context, s sessions.Session) {
	if err := s.Save(); err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Status(http.StatusNoContent)
}

// addTestRoutes adds the routes that let a test sign in, read and edit its
// session, and get a CSRF token (loginastest.Mount).
func addTestRoutes(r *gin.Engine, p *loginas.Plugin) {
	// The app's own sign-in, reduced to setting the user key; with fresh
	// set it starts the session over.
	r.POST("/test/login", func(c *gin.Context) {
		s := sessions.Default(c)
		if c.PostForm("fresh") != "" {
			s.Clear()
		}
		s.Set(userKey, c.PostForm("id"))
		saved(c, s)
	})
	// The app's own sign-outs: one that deletes only its user key, and one
	// that clears the session.
	r.POST("/test/drop-user", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Delete(userKey)
		saved(c, s)
	})
	r.POST("/test/clear", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Clear()
		saved(c, s)
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
	loginastest.Mount(r, p)
	r.GET("/test/state", func(c *gin.Context) { c.JSON(http.StatusOK, stateOf(c)) })
	r.GET("/test/page", showPage)
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
		saved(c, s)
	})
	r.GET("/test/get", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"value": sessions.Default(c).Get(c.Query("key"))})
	})
}

// reply is a response, read in full.
type reply struct {
	status int // 0 after a transport error
	header http.Header
	body   string
}

// location is the redirect's target.
func (r *reply) location() string { return r.header.Get("Location") }

// jsonBody decodes the body as a JSON object.
func (r *reply) jsonBody(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoErrorf(t, json.Unmarshal([]byte(r.body), &m), "body %q", r.body)
	return m
}

// client is one browser: its own cookie jar, redirects not followed. It
// talks to the app's server, or to its engine in process when the app has
// none. A failure to send is reported with Errorf, so that goroutines may
// send; the helpers that check an answer (signIn, state, page...) stop the
// test and belong on its goroutine.
type client struct {
	t    testing.TB
	app  *testApp
	base string
	hc   *http.Client
}

// inProcessURL is the base URL of the clients of an app without a server:
// a cookie jar sends Secure cookies, as the cookie store makes them by
// default, to localhost over plain HTTP.
const inProcessURL = "http://localhost"

// client returns a new browser for the app.
func (a *testApp) client() *client { return a.clientFor(a.t) }

// clientFor returns a new browser for the app that reports to tb, for a
// fuzz target whose apps outlive the iteration that built them.
func (a *testApp) clientFor(tb testing.TB) *client {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	c := &client{t: tb, app: a, base: inProcessURL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	if a.server == nil {
		c.hc.Transport = inProcess{a.engine}
	} else {
		c.base, c.hc.Transport = a.server.URL, newTransport(tb)
	}
	return c
}

// signedIn returns a new browser signed in as id (client.signIn).
func (a *testApp) signedIn(id string) *client {
	a.t.Helper()
	c := a.client()
	c.signIn(id)
	return c
}

// clientWith returns a new browser holding a copy of the given cookies.
func (a *testApp) clientWith(cookies []*http.Cookie) *client {
	c := a.client()
	u, _ := url.Parse(c.base)
	c.hc.Jar.SetCookies(u, cookies)
	return c
}

// loginasClient returns a loginastest.Client of the app, signed in as id
// through the app's own sign-in: for flows that only log in as someone and
// return.
func (a *testApp) loginasClient(t *testing.T, id string) *loginastest.Client {
	t.Helper()
	c := loginastest.NewClient(a.server.URL, a.plugin)
	c.HTTP.Transport = newTransport(t)
	r := c.PostForm(t, "/test/login", url.Values{"id": {id}})
	require.Equal(t, http.StatusNoContent, r.StatusCode)
	return c
}

// newTransport returns a transport of the test's own: httptest.Server.Close
// closes the idle connections of http.DefaultTransport, which would break
// the clients of tests running in parallel.
func newTransport(tb testing.TB) *http.Transport {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(transport.CloseIdleConnections)
	return transport
}

// inProcess is a transport that serves each request with a handler, as
// httptest.NewRecorder records it.
type inProcess struct{ h http.Handler }

// RoundTrip serves req; a request without a body gets an empty one, as a
// server gives it.
func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		req = req.Clone(req.Context())
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// cookies returns the cookies the browser holds for the app.
func (c *client) cookies() []*http.Cookie {
	u, _ := url.Parse(c.base)
	var out []*http.Cookie
	for _, k := range c.hc.Jar.Cookies(u) {
		out = append(out, &http.Cookie{Name: k.Name, Value: k.Value})
	}
	return out
}

// cookieHeader returns the Cookie header that carries cookies, to replay a
// session in process.
func cookieHeader(cookies []*http.Cookie) string {
	parts := make([]string, 0, len(cookies))
	for _, k := range cookies {
		parts = append(parts, k.Name+"="+k.Value)
	}
	return strings.Join(parts, "; ")
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

// tokenForm is a form that carries only the CSRF token.
func tokenForm(token string) url.Values {
	return url.Values{loginas.CSRFField: {token}}
}

// do sends form, URL-encoded, unless it is nil.
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

// send sends one request with the given headers ("Host" sets the host).
func (c *client) send(method, path string, body io.Reader, h http.Header) *reply {
	c.t.Helper()
	failed := &reply{header: http.Header{}}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return failed
	}
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
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return failed
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Errorf("%s %s: reading the body: %v", method, path, err)
	}
	return &reply{status: res.StatusCode, header: res.Header, body: string(b)}
}

// get requests path with the given headers.
func (c *client) get(path string, h ...http.Header) *reply {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, merge(h))
}

// post posts form (none if nil) to path with the given headers.
func (c *client) post(path string, form url.Values, h ...http.Header) *reply {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, path, form, merge(h))
}

// merge joins header sets.
func merge(hs []http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, vs := range h {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

// getJSON reads path, which must answer 200, into v.
func (c *client) getJSON(path string, v any, h ...http.Header) {
	c.t.Helper()
	r := c.get(path, h...)
	require.Equal(c.t, http.StatusOK, r.status, r.body)
	require.NoErrorf(c.t, json.Unmarshal([]byte(r.body), v), "GET %s: %s", path, r.body)
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
	r := c.get(loginastest.TokenPath)
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

// state reads the session's state without changing it.
func (c *client) state() (st state) {
	c.t.Helper()
	c.getJSON("/test/state", &st)
	return st
}

// page reads a page of the app (showPage), which consumes the flash
// messages.
func (c *client) page() (page pageView) {
	c.t.Helper()
	c.getJSON("/test/page", &page)
	return page
}

// tryPage is page for goroutines: it fails the test with Errorf only, and
// returns the status (0 after a transport error) for the caller to judge.
func (c *client) tryPage() (pageView, int) {
	var page pageView
	r := c.get("/test/page")
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			c.t.Errorf("GET /test/page: %v", err)
		}
	}
	return page, r.status
}

// flashes reads and consumes the session's flash messages.
func (c *client) flashes() (out []string) {
	c.t.Helper()
	c.getJSON("/test/flashes", &out)
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
	var v struct{ Value any }
	c.getJSON("/test/get?key="+url.QueryEscape(key), &v)
	return v.Value
}

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

// errRefused is a plain error a permission hook returns.
var errRefused = errors.New("refused by the app")
