package loginastest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-contrib/sessions/memstore"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

var (
	sessionKeyPair = []byte("0123456789abcdef0123456789abcdef")
	pluginSecret   = []byte("fedcba9876543210fedcba9876543210")
)

// users is the in-memory user table of the test app.
var users = map[string]loginas.User{
	"1": {ID: "1", Name: "admin", Superuser: true, Active: true},
	"2": {ID: "2", Name: "alice", Active: true},
	"3": {ID: "3", Name: "staff", Active: true},
	"4": {ID: "4", Name: "root", Superuser: true, Active: true},
}

func findUser(_ context.Context, id string) (loginas.User, error) {
	u, ok := users[id]
	if !ok {
		return loginas.User{}, loginas.ErrUserNotFound
	}
	return u, nil
}

// stores are the session stores every flow runs against: one that keeps
// the session in the cookie, one that keeps it on the server.
var stores = []struct {
	name string
	new  func() sessions.Store
}{
	{"cookie", func() sessions.Store { return cookie.NewStore(sessionKeyPair) }},
	{"memstore", func() sessions.Store { return memstore.NewStore(sessionKeyPair) }},
}

// app is a small Gin app using the plugin, served over real HTTP.
type app struct {
	srv    *httptest.Server
	plugin *loginas.Plugin
	audit  *loginastest.Recorder
}

// newApp starts the test app. Its own routes: POST /login (form field id),
// GET /whoami (JSON), GET /page (HTML with the plugin's logout partial).
func newApp(t *testing.T, store sessions.Store, prefix string) *app {
	t.Helper()
	audit := &loginastest.Recorder{}
	router := gin.New()
	router.Use(sessions.Sessions("app", store))
	p, err := loginas.Register(router, loginas.Options{
		FindUser:   findUser,
		SessionKey: "user_id",
		Secret:     pluginSecret,
		Prefix:     prefix,
		Audit:      audit.Audit,
	})
	if err != nil {
		t.Fatal(err)
	}
	loginastest.Mount(router, p)

	router.POST("/login", func(c *gin.Context) {
		u, err := findUser(c, c.PostForm("id"))
		if err != nil {
			c.Status(http.StatusUnauthorized)
			return
		}
		s := sessions.Default(c)
		s.Set("user_id", u.ID)
		if err := s.Save(); err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Redirect(http.StatusSeeOther, "/")
	})
	router.GET("/whoami", func(c *gin.Context) {
		id, _ := sessions.Default(c).Get("user_id").(string)
		c.JSON(http.StatusOK, gin.H{"user": id, "is_impersonated": c.GetBool("is_impersonated")})
	})
	page, err := loginas.AddTemplates(template.Must(template.New("page").Parse(
		`<html><body><p>Some other form: <input type="hidden" name="other" value="x"></p>{{template "loginas/logout" .}}</body></html>`)))
	if err != nil {
		t.Fatal(err)
	}
	router.GET("/page", func(c *gin.Context) {
		c.Header("Content-Type", "text/html; charset=utf-8")
		if err := page.ExecuteTemplate(c.Writer, "page", loginas.BannerFor(c)); err != nil {
			c.Status(http.StatusInternalServerError)
		}
	})

	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return &app{srv: srv, plugin: p, audit: audit}
}

// signIn signs c in through the app's own login route.
func signIn(t *testing.T, c *loginastest.Client, id string) {
	t.Helper()
	if resp := c.PostForm(t, "/login", url.Values{"id": {id}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in as %s: %s", id, resp.Status)
	}
}

type whoami struct {
	User           string `json:"user"`
	IsImpersonated bool   `json:"is_impersonated"`
}

func readWhoami(t *testing.T, c *loginastest.Client) whoami {
	t.Helper()
	resp := c.Get(t, "/whoami")
	var w whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /whoami: %s, %v", resp.Status, err)
	}
	return w
}

func requireWhoami(t *testing.T, c *loginastest.Client, want whoami) {
	t.Helper()
	if got := readWhoami(t, c); got != want {
		t.Fatalf("GET /whoami = %+v, want %+v", got, want)
	}
}

func TestStartAndReturn(t *testing.T) {
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			a := newApp(t, store.new(), "")
			c := loginastest.NewClient(a.srv.URL, a.plugin)
			signIn(t, c, "1")
			requireWhoami(t, c, whoami{User: "1"})

			if resp := c.LoginAs(t, "2", "ticket 42"); resp.StatusCode != http.StatusOK {
				t.Fatalf("LoginAs answered %s", resp.Status)
			}
			start := a.audit.Require(t, loginas.ActionStart, "")
			if start.ActorID != "1" || start.TargetID != "2" || start.TargetName != "alice" || start.Reason != "ticket 42" || start.ImpersonationID == "" {
				t.Fatalf("start event = %+v", start)
			}
			requireWhoami(t, c, whoami{User: "2", IsImpersonated: true})

			c.Return(t)
			end := a.audit.Require(t, loginas.ActionEnd, loginas.CauseLogout)
			if end.ImpersonationID != start.ImpersonationID || end.ActorID != "1" || end.TargetID != "2" {
				t.Fatalf("end event = %+v, start was %+v", end, start)
			}
			requireWhoami(t, c, whoami{User: "1"})
			if n := len(a.audit.Events()); n != 2 {
				t.Fatalf("recorded %d events, want 2:\n%s", n, a.audit)
			}
		})
	}
}

func TestRefusalsAreRecorded(t *testing.T) {
	cases := []struct {
		name    string
		actor   string
		before  string // a target to log in as first, or ""
		target  string
		status  int
		cause   loginas.Cause
		message string
	}{
		{name: "staff actor", actor: "3", target: "2", status: http.StatusForbidden, cause: loginas.CauseNotPermitted},
		{name: "superuser target", actor: "1", target: "4", status: http.StatusForbidden, cause: loginas.CauseSuperuser},
		{name: "oneself", actor: "1", target: "1", status: http.StatusUnprocessableEntity, cause: loginas.CauseSelf},
		{name: "unknown target", actor: "1", target: "99", status: http.StatusNotFound, cause: loginas.CauseNotFound},
		{name: "nested", actor: "1", before: "2", target: "3", status: http.StatusConflict, cause: loginas.CauseNested},
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					a := newApp(t, store.new(), "")
					c := loginastest.NewClient(a.srv.URL, a.plugin)
					signIn(t, c, tc.actor)
					want := whoami{User: tc.actor}
					if tc.before != "" {
						c.LoginAs(t, tc.before, "")
						want = whoami{User: tc.before, IsImpersonated: true}
					}

					resp := c.TryLoginAs(t, tc.target, "just looking")
					var body struct {
						Error string `json:"error"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != tc.status || body.Error == "" {
						t.Fatalf("TryLoginAs = %s %q (%v), want %d with an error message", resp.Status, body.Error, err, tc.status)
					}
					denied := a.audit.Require(t, loginas.ActionDenied, tc.cause)
					if denied.ActorID != tc.actor || denied.Detail != body.Error {
						t.Fatalf("denied event = %+v, want actor %s and detail %q", denied, tc.actor, body.Error)
					}
					if last, _ := a.audit.Last(); last.Action != loginas.ActionDenied {
						t.Fatalf("last event = %+v, want the refusal", last)
					}
					requireWhoami(t, c, want)
				})
			}
		})
	}
}

// fakeT records failures instead of stopping, to test the messages.
type fakeT struct{ failures []string }

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func TestFailuresAreReadable(t *testing.T) {
	cases := []struct {
		name string
		// run calls one helper with ft and reports whether it returned
		// nothing (nil response, empty token), as it must after a failure.
		run  func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool
		want []string
	}{
		{
			name: "LoginAs refused",
			run: func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool {
				signIn(t, c, "3")
				return c.LoginAs(ft, "2", "") == nil
			},
			want: []string{`log in as "2" failed`, "POST /admin/loginas/2", "403 Forbidden", loginas.DefaultMessages()["en"].NotPermitted},
		},
		{
			name: "LoginAs before signing in",
			run: func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool {
				return c.LoginAs(ft, "2", "") == nil
			},
			want: []string{`log in as "2" failed`, "403 Forbidden", "no CSRF token was sent", "is the client signed in?"},
		},
		{
			name: "Return while not impersonating",
			run: func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool {
				signIn(t, c, "1")
				return c.Return(ft) == nil
			},
			want: []string{"was not impersonating anyone", "POST /admin/loginas/logout", "signed it out"},
		},
		{
			name: "token page missing",
			run: func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool {
				c.TokenPage = "/nowhere"
				return c.Token(ft) == ""
			},
			want: []string{"token page /nowhere answered 404 Not Found"},
		},
		{
			name: "Require without a match",
			run: func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool {
				signIn(t, c, "3")
				c.TryLoginAs(t, "2", "")
				e := a.audit.Require(ft, loginas.ActionStart, "")
				return e == (loginas.Event{})
			},
			want: []string{"no audit event start; recorded:", `1. denied/not_permitted actor=3 (staff) detail="`, "POST /admin/loginas/2"},
		},
		{
			name: "Require with a cause",
			run: func(t *testing.T, a *app, c *loginastest.Client, ft *fakeT) bool {
				a.audit.Require(ft, loginas.ActionEnd, loginas.CauseExpired)
				return true
			},
			want: []string{"no audit event end/expired; recorded:\n  (no events)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, memstore.NewStore(sessionKeyPair), "")
			c := loginastest.NewClient(a.srv.URL, a.plugin)
			ft := &fakeT{}
			if !tc.run(t, a, c, ft) {
				t.Errorf("the helper returned a value after failing")
			}
			if len(ft.failures) != 1 {
				t.Fatalf("got %d failures, want 1: %q", len(ft.failures), ft.failures)
			}
			for _, w := range tc.want {
				if !strings.Contains(ft.failures[0], w) {
					t.Errorf("failure message lacks %q:\n%s", w, ft.failures[0])
				}
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	cases := []struct {
		name      string
		tokenPage string
		nilPlugin bool
	}{
		{name: "mounted route", tokenPage: loginastest.TokenPath},
		{name: "scraped from a page with the logout partial", tokenPage: "/page"},
		{name: "without the plugin value", tokenPage: loginastest.TokenPath, nilPlugin: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, cookie.NewStore(sessionKeyPair), "")
			p := a.plugin
			if tc.nilPlugin {
				p = nil
			}
			c := loginastest.NewClient(a.srv.URL, p)
			c.TokenPage = tc.tokenPage
			if tok := c.Token(t); tok != "" {
				t.Fatalf("anonymous client got token %q, want none", tok)
			}
			signIn(t, c, "1")
			if tok := c.Token(t); len(tok) < 32 {
				t.Fatalf("signed-in client got token %q", tok)
			}
			c.LoginAs(t, "2", "")
			requireWhoami(t, c, whoami{User: "2", IsImpersonated: true})
			c.Return(t)
			requireWhoami(t, c, whoami{User: "1"})
		})
	}
}

func TestCustomPrefix(t *testing.T) {
	a := newApp(t, memstore.NewStore(sessionKeyPair), "/staff/as")
	c := loginastest.NewClient(a.srv.URL, a.plugin)
	signIn(t, c, "1")
	c.LoginAs(t, "2", "")
	if e := a.audit.Require(t, loginas.ActionStart, ""); e.Path != "/staff/as/2" {
		t.Fatalf("start was posted to %s, want /staff/as/2", e.Path)
	}
	c.Return(t)
	if e := a.audit.Require(t, loginas.ActionEnd, loginas.CauseLogout); e.Path != "/staff/as/logout" {
		t.Fatalf("return was posted to %s, want /staff/as/logout", e.Path)
	}
}

func TestTryReturnSignsOutWhenNotImpersonating(t *testing.T) {
	a := newApp(t, memstore.NewStore(sessionKeyPair), "")
	c := loginastest.NewClient(a.srv.URL, a.plugin)
	signIn(t, c, "1")
	if resp := c.TryReturn(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("TryReturn answered %s", resp.Status)
	}
	requireWhoami(t, c, whoami{})
	if events := a.audit.Events(); len(events) != 0 {
		t.Fatalf("a plain logout recorded events:\n%s", a.audit)
	}
}

func TestClientKeepsRedirectsAndBodies(t *testing.T) {
	a := newApp(t, cookie.NewStore(sessionKeyPair), "")
	c := loginastest.NewClient(a.srv.URL+"/", a.plugin)
	resp := c.PostForm(t, "/login", url.Values{"id": {"1"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /login = %s to %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	resp = c.Get(t, a.srv.URL+"/whoami")
	first, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(first), `"user":"1"`) {
		t.Fatalf("GET by full URL = %s", first)
	}
	req, err := http.NewRequest(http.MethodGet, "/whoami?x=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(c.Do(t, req).Body); string(body) != string(first) {
		t.Fatalf("Do with a relative URL = %s, want %s", body, first)
	}
}

func TestTokenFromHTML(t *testing.T) {
	cases := []struct {
		name string
		page string
		want string
	}{
		{"rendered partial", `<form><input type="hidden" name="loginas_csrf" value="abc-_123"></form>`, "abc-_123"},
		{"value before name", `<input value='v1' type=hidden name=loginas_csrf>`, "v1"},
		{"upper case and line breaks", "<INPUT\n  NAME=\"loginas_csrf\"\n  VALUE=\"v2\"/>", "v2"},
		{"escaped value", `<input name="loginas_csrf" value="a&#43;b&amp;c">`, "a+b&c"},
		{"other fields first", `<input name="reason" value="r"><input name="loginas_csrf" value="v3"><input name="loginas_csrf" value="v4">`, "v3"},
		{"similar name", `<input name="loginas_csrf2" value="no"><input data-name="loginas_csrf" value="no">`, ""},
		{"no value", `<input name="loginas_csrf">`, ""},
		{"no field", `<p>name="loginas_csrf" value="text"</p>`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := loginastest.TokenFromHTML(tc.page); got != tc.want {
				t.Fatalf("TokenFromHTML = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	var r loginastest.Recorder
	if _, ok := r.Last(); ok {
		t.Fatal("Last on an empty Recorder reported an event")
	}
	events := []loginas.Event{
		{Action: loginas.ActionDenied, Cause: loginas.CauseSelf, Detail: "first"},
		{Action: loginas.ActionStart, ImpersonationID: "a"},
		{Action: loginas.ActionDenied, Cause: loginas.CauseNested, Detail: "second"},
		{Action: loginas.ActionEnd, Cause: loginas.CauseLogout, ImpersonationID: "a"},
	}
	for _, e := range events {
		if err := r.Audit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	finds := []struct {
		name   string
		action loginas.Action
		cause  loginas.Cause
		detail string
		found  bool
	}{
		{"any cause finds the latest", loginas.ActionDenied, "", "second", true},
		{"exact cause", loginas.ActionDenied, loginas.CauseSelf, "first", true},
		{"start", loginas.ActionStart, "", "", true},
		{"absent cause", loginas.ActionEnd, loginas.CauseExpired, "", false},
	}
	for _, f := range finds {
		t.Run(f.name, func(t *testing.T) {
			e, ok := r.Find(f.action, f.cause)
			if ok != f.found || e.Detail != f.detail || (ok && e.Action != f.action) {
				t.Fatalf("Find(%s, %q) = %+v, %v", f.action, f.cause, e, ok)
			}
		})
	}

	got := r.Events()
	if len(got) != len(events) || got[3] != events[3] {
		t.Fatalf("Events = %+v", got)
	}
	got[0].Detail = "changed"
	if again := r.Events(); again[0].Detail != "first" {
		t.Fatal("changing the slice from Events changed the Recorder")
	}
	if last, ok := r.Last(); !ok || last != events[3] {
		t.Fatalf("Last = %+v, %v", last, ok)
	}
	r.Reset()
	if n := len(r.Events()); n != 0 {
		t.Fatalf("%d events after Reset", n)
	}
}

func TestRecorderConcurrentUse(t *testing.T) {
	var r loginastest.Recorder
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_ = r.Audit(t.Context(), loginas.Event{Action: loginas.ActionStart, ImpersonationID: fmt.Sprint(i)})
			r.Find(loginas.ActionStart, "")
			r.Last()
			_ = r.String()
		})
	}
	wg.Wait()
	if n := len(r.Events()); n != 50 {
		t.Fatalf("recorded %d events, want 50", n)
	}
}

// A session cookie with the Secure flag works over the plain HTTP of an
// httptest.Server: Go's cookie jar sends Secure cookies to loopback
// addresses, as the package documentation says.
func TestSecureCookiesOverLoopback(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new()
			store.Options(sessions.Options{Path: "/", Secure: true, HttpOnly: true})
			a := newApp(t, store, "")
			c := loginastest.NewClient(a.srv.URL, a.plugin)
			c.PostForm(t, "/login", url.Values{"id": {"1"}})
			c.LoginAs(t, "2", "secure cookie")
			c.Return(t)
		})
	}
}
