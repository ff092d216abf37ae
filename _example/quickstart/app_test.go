package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
	"github.com/gin-loginas/loginas/redisstore/redistest"
	"golang.org/x/net/html"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// env is the app over real HTTP on one kind of session store.
type env struct {
	app   *App
	srv   *httptest.Server
	audit *loginastest.Recorder
	logs  *syncBuffer
}

// eachStore runs test on cookie sessions, memstore sessions and Redis
// sessions (on a redis-server of its own).
func eachStore(t *testing.T, test func(t *testing.T, e *env)) {
	for _, kind := range []string{"cookie", "memstore", "redis"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			test(t, newEnv(t, kind))
		})
	}
}

func newEnv(t *testing.T, kind string) *env {
	t.Helper()
	var redisAddr string
	if kind == "redis" {
		redisAddr = redistest.Start(t).Addr
	}
	store, err := NewSessionStore(kind, redisAddr, []byte(rand.Text()+rand.Text()), []byte(rand.Text()[:16]), false)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{audit: &loginastest.Recorder{}, logs: &syncBuffer{}}
	e.app, err = New(Config{
		Store:  store,
		Secret: []byte(rand.Text() + rand.Text()),
		Audit:  e.audit.Audit,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	loginastest.Mount(e.app.Engine, e.app.Plugin)
	// What the session holds under "user_id", with its Go type.
	e.app.Engine.GET("/_test/session", func(c *gin.Context) {
		v := sessions.Default(c).Get(sessionKey)
		c.String(http.StatusOK, "%T %v", v, v)
	})
	e.srv = httptest.NewServer(e.app.Engine)
	t.Cleanup(e.srv.Close)
	return e
}

// client returns a client signed in through the app's own login form.
func (e *env) client(t *testing.T, email string, extra ...string) *loginastest.Client {
	t.Helper()
	c := loginastest.NewClient(e.srv.URL, e.app.Plugin)
	password, _, _ := strings.Cut(email, "@")
	form := url.Values{"email": {email}, "password": {password}}
	for _, name := range extra {
		form.Set(name, "1")
	}
	resp := c.PostForm(t, "/login", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login as %s: %s, Location %q", email, resp.Status, resp.Header.Get("Location"))
	}
	return c
}

type me struct {
	ID             uint    `json:"id"` // a JSON string would not decode
	Name           string  `json:"name"`
	IsImpersonated bool    `json:"is_impersonated"`
	Impersonator   *string `json:"impersonator"`
}

func getMe(t *testing.T, c *loginastest.Client) (me, int) {
	t.Helper()
	resp := c.Get(t, "/me")
	var m me
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("GET /me: %v", err)
		}
	}
	return m, resp.StatusCode
}

func requireMe(t *testing.T, c *loginastest.Client, id uint, impersonator string) {
	t.Helper()
	m, status := getMe(t, c)
	got := ""
	if m.Impersonator != nil {
		got = *m.Impersonator
	}
	if status != http.StatusOK || m.ID != id || m.IsImpersonated != (impersonator != "") || got != impersonator {
		t.Fatalf("GET /me = %d %+v (impersonator %q), want id %d, impersonator %q", status, m, got, id, impersonator)
	}
}

// page GETs path and fails unless it answers want.
func page(t *testing.T, c *loginastest.Client, path string, want int) (*http.Response, string) {
	t.Helper()
	resp := c.Get(t, path)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d\n%s", path, resp.Status, want, body)
	}
	return resp, string(body)
}

func sessionValue(t *testing.T, c *loginastest.Client) string {
	t.Helper()
	_, body := page(t, c, "/_test/session", http.StatusOK)
	return body
}

// form is an HTML form as a browser would submit it.
type form struct {
	Method, Action string
	Values         url.Values
}

// findForm returns the form of page whose action is action.
func findForm(t *testing.T, page, action string) (form, bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "form" || attr(n, "action") != action {
			continue
		}
		f := form{Method: strings.ToUpper(attr(n, "method")), Action: action, Values: url.Values{}}
		for in := range n.Descendants() {
			if in.Type == html.ElementNode && (in.Data == "input" || in.Data == "textarea") && attr(in, "name") != "" {
				f.Values.Add(attr(in, "name"), attr(in, "value"))
			}
		}
		return f, true
	}
	return form{}, false
}

// element returns the first element of page with the given id.
func element(t *testing.T, page, id string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && attr(n, "id") == id {
			return n
		}
	}
	t.Fatalf("no element #%s in\n%s", id, page)
	return nil
}

func metaContent(t *testing.T, page, name string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "meta" && attr(n, "name") == name {
			return attr(n, "content")
		}
	}
	return ""
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// post submits f as a browser does, from the page at referer.
func post(t *testing.T, c *loginastest.Client, f form, referer string) *http.Response {
	t.Helper()
	if f.Method != http.MethodPost {
		t.Fatalf("form %s has method %q", f.Action, f.Method)
	}
	req, err := http.NewRequest(http.MethodPost, f.Action, strings.NewReader(f.Values.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", referer)
	return c.Do(t, req)
}

func requireRedirect(t *testing.T, resp *http.Response, location string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != location {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s, Location %q, want 303 to %q\n%s", resp.Request.Method, resp.Request.URL.Path,
			resp.Status, resp.Header.Get("Location"), location, body)
	}
}

func TestSessionIDStaysUint(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		admin := e.client(t, "admin@example.com")
		if got := sessionValue(t, admin); got != "uint 1" {
			t.Fatalf("after login the session holds %q, want uint 1", got)
		}
		admin.LoginAs(t, "3", "ticket 1")
		if got := sessionValue(t, admin); got != "uint 3" {
			t.Fatalf("after the switch the session holds %q, want uint 3", got)
		}
		requireMe(t, admin, 3, "Ada Admin")
		admin.Return(t)
		if got := sessionValue(t, admin); got != "uint 1" {
			t.Fatalf("after the return the session holds %q, want uint 1", got)
		}
		requireMe(t, admin, 1, "")
	})
}

func TestButtonOnlyForAdminsAndWorksAsRendered(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		admin := e.client(t, "admin@example.com")
		for id, visible := range map[string]bool{
			"3": true, "4": true, // regular users
			"1": false, // oneself
			"2": false, // another administrator (a superuser)
			"5": false, // a disabled user
		} {
			_, body := page(t, admin, "/admin/users/"+id, http.StatusOK)
			if _, ok := findForm(t, body, "/admin/loginas/"+id); ok != visible {
				t.Errorf("admin on /admin/users/%s: button shown %v, want %v", id, ok, visible)
			}
		}
		root := e.client(t, "root@example.com")
		if _, body := page(t, root, "/admin/users/4", http.StatusOK); !strings.Contains(body, `action="/admin/loginas/4"`) {
			t.Error("the second administrator sees no button on bob's page")
		}
		alice := e.client(t, "alice@example.com")
		if _, body := page(t, alice, "/admin/users/4", http.StatusForbidden); strings.Contains(body, "/admin/loginas/4") {
			t.Error("a regular user got the button")
		}

		// The button's form, posted as the browser renders it.
		_, body := page(t, admin, "/admin/users/3", http.StatusOK)
		f, _ := findForm(t, body, "/admin/loginas/3")
		if f.Values.Get(loginas.CSRFField) == "" || loginastest.TokenFromHTML(body) == "" {
			t.Fatalf("the button's form has no token: %v", f.Values)
		}
		f.Values.Set("reason", "ticket 42")
		requireRedirect(t, post(t, admin, f, e.srv.URL+"/admin/users/3"), "/")
		start := e.audit.Require(t, loginas.ActionStart, "")
		if start.ActorID != "1" || start.TargetID != "3" || start.Reason != "ticket 42" {
			t.Fatalf("start event = %+v", start)
		}
		requireMe(t, admin, 3, "Ada Admin")
		// The admin now sees the app as alice does: no admin pages.
		page(t, admin, "/admin/users/4", http.StatusForbidden)
	})
}

func TestBannerAndItsReturnButton(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		admin := e.client(t, "admin@example.com")
		if _, body := page(t, admin, "/", http.StatusOK); strings.Contains(body, "loginas-banner") {
			t.Fatal("a banner before any switch")
		}
		admin.LoginAs(t, "3", "")
		resp, body := page(t, admin, "/", http.StatusOK)
		if !strings.Contains(body, "You are signed in as alice") || !strings.Contains(body, "Ada Admin") {
			t.Fatalf("no banner naming alice and Ada Admin:\n%s", body)
		}
		if resp.Header.Get(loginas.HeaderImpersonatedUser) != "3" || resp.Header.Get(loginas.HeaderImpersonator) != "1" {
			t.Errorf("headers %v", resp.Header)
		}
		f, ok := findForm(t, body, e.app.Plugin.LogoutURL())
		if !ok {
			t.Fatalf("no return button:\n%s", body)
		}
		requireRedirect(t, post(t, admin, f, e.srv.URL+"/"), "/")
		e.audit.Require(t, loginas.ActionEnd, loginas.CauseLogout)
		requireMe(t, admin, 1, "")
		if _, body := page(t, admin, "/", http.StatusOK); strings.Contains(body, "You are signed in as") {
			t.Fatal("the banner stayed after the return")
		}
	})
}

func TestOwnLogoutReturnsActor(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		admin := e.client(t, "admin@example.com", "remember")
		admin.LoginAs(t, "3", "")
		_, body := page(t, admin, "/", http.StatusOK)
		f, ok := findForm(t, body, "/logout")
		if !ok {
			t.Fatalf("no logout button:\n%s", body)
		}
		resp := post(t, admin, f, e.srv.URL+"/")
		requireRedirect(t, resp, "/admin/")
		for _, c := range resp.Cookies() {
			if c.Name == rememberCookie {
				t.Errorf("the return touched the remember-me cookie: %v", c)
			}
		}
		e.audit.Require(t, loginas.ActionEnd, loginas.CauseLogout)
		requireMe(t, admin, 1, "")
		page(t, admin, "/admin/", http.StatusOK)
		if strings.Contains(e.logs.String(), "audit: logout") {
			t.Errorf("the return was logged as a logout:\n%s", e.logs)
		}
	})
}

func TestOwnLogoutSignsUserOut(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		alice := e.client(t, "alice@example.com", "remember")
		base, _ := url.Parse(e.srv.URL)
		remembered := cookieIn(alice, base, rememberCookie)
		if remembered == nil {
			t.Fatal("no remember-me cookie after a login with remember")
		}
		// The cookie alone signs a browser in.
		other := loginastest.NewClient(e.srv.URL, e.app.Plugin)
		other.HTTP.Jar.SetCookies(base, []*http.Cookie{remembered})
		requireMe(t, other, 3, "")

		_, body := page(t, alice, "/", http.StatusOK)
		f, _ := findForm(t, body, "/logout")
		resp := post(t, alice, f, e.srv.URL+"/")
		requireRedirect(t, resp, "/login")
		cleared := false
		for _, c := range resp.Cookies() {
			cleared = cleared || c.Name == rememberCookie && c.MaxAge < 0
		}
		if !cleared || cookieIn(alice, base, rememberCookie) != nil {
			t.Errorf("remember-me cookie not cleared: %v", resp.Header.Values("Set-Cookie"))
		}
		if _, status := getMe(t, alice); status != http.StatusUnauthorized {
			t.Errorf("GET /me after logout: %d", status)
		}
		if !strings.Contains(e.logs.String(), "msg=\"audit: logout\" user_id=3") {
			t.Errorf("no audit line for the logout:\n%s", e.logs)
		}
		// The remembered token is dead too.
		fresh := loginastest.NewClient(e.srv.URL, e.app.Plugin)
		fresh.HTTP.Jar.SetCookies(base, []*http.Cookie{remembered})
		if _, status := getMe(t, fresh); status != http.StatusUnauthorized {
			t.Errorf("the old remember-me cookie still signs in: %d", status)
		}
		if _, ok := e.audit.Find(loginas.ActionEnd, ""); ok {
			t.Errorf("a plain logout was audited as the end of an impersonation:\n%s", e.audit)
		}
	})
}

func cookieIn(c *loginastest.Client, u *url.URL, name string) *http.Cookie {
	for _, ck := range c.HTTP.Jar.Cookies(u) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// fetchSwitch posts as static/app.js does: the JSON body, the token from
// the page's meta tag in X-Loginas-CSRF, Accept: application/json, and the
// headers a browser adds to a same-origin fetch.
func fetchSwitch(t *testing.T, e *env, c *loginastest.Client, action, token, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, action, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(loginas.CSRFHeader, token)
	}
	req.Header.Set("Origin", e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	return c.Do(t, req)
}

func TestFetchSwitchAnswersJSON(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, script := page(t, loginastest.NewClient(e.srv.URL, nil), "/static/app.js", http.StatusOK)
		for _, want := range []string{`meta[name="loginas-csrf"]`, `"X-Loginas-CSRF": token`, `"Accept": "application/json"`, `JSON.stringify({reason:`, `location.assign(body.redirect)`} {
			if !strings.Contains(script, want) {
				t.Errorf("app.js does not send %s", want)
			}
		}

		admin := e.client(t, "admin@example.com")
		_, body := page(t, admin, "/admin/users/3", http.StatusOK)
		token := metaContent(t, body, "loginas-csrf")
		button := element(t, body, "fetch-switch")
		action, next := attr(button, "data-action"), attr(button, "data-next")
		if token == "" || action != "/admin/loginas/3" || next != "/me" {
			t.Fatalf("token %q, action %q, next %q", token, action, next)
		}
		resp := fetchSwitch(t, e, admin, action, token, `{"reason": "ticket 4711", "next": "/me"}`)
		var got struct {
			Impersonating bool
			User          struct{ ID, Name string }
			Impersonator  struct{ ID, Name string }
			Redirect      string
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("switch: %s %v %v", resp.Status, resp.Header, err)
		}
		if !got.Impersonating || got.User.ID != "3" || got.Impersonator.ID != "1" || got.Redirect != "/me" {
			t.Fatalf("switch answered %+v", got)
		}
		start := e.audit.Require(t, loginas.ActionStart, "")
		if start.Reason != "ticket 4711" || start.TargetID != "3" {
			t.Fatalf("start event = %+v", start)
		}
		requireMe(t, admin, 3, "Ada Admin")

		// A second switch while impersonating: 409 and JSON.
		_, body = page(t, admin, "/", http.StatusOK)
		resp = fetchSwitch(t, e, admin, "/admin/loginas/4", metaContent(t, body, "loginas-csrf"), `{"reason": "again"}`)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(readAll(resp), `"error"`) {
			t.Fatalf("nested switch: %s", resp.Status)
		}
	})
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestWrongOrMissingTokenRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		admin := e.client(t, "admin@example.com")
		root := e.client(t, "root@example.com")
		_, rootPage := page(t, root, "/admin/users/3", http.StatusOK)
		_, body := page(t, admin, "/admin/users/3", http.StatusOK)
		good := metaContent(t, body, "loginas-csrf")

		for name, token := range map[string]string{
			"missing":         "",
			"wrong":           "not-a-token",
			"tampered":        good[:len(good)-2] + "AA",
			"another session": metaContent(t, rootPage, "loginas-csrf"),
		} {
			resp := fetchSwitch(t, e, admin, "/admin/loginas/3", token, `{"reason": "x"}`)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(readAll(resp), `"error"`) {
				t.Errorf("JSON switch, %s token: %s", name, resp.Status)
			}
		}
		f, _ := findForm(t, body, "/admin/loginas/3")
		f.Values.Del(loginas.CSRFField)
		if resp := post(t, admin, f, e.srv.URL+"/admin/users/3"); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
			t.Errorf("form switch without a token: %s, Location %q", resp.Status, resp.Header.Get("Location"))
		}
		// The app's own logout, behind ReturnRoute, wants the token too.
		if resp := post(t, admin, form{Method: "POST", Action: "/logout", Values: url.Values{}}, e.srv.URL+"/"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("logout without a token: %s", resp.Status)
		}
		// The app's own login form: cross-site posts are refused.
		req, _ := http.NewRequest(http.MethodPost, "/login", strings.NewReader("email=alice%40example.com&password=alice"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp := admin.Do(t, req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site login: %s", resp.Status)
		}

		requireMe(t, admin, 1, "")
		if _, ok := e.audit.Find(loginas.ActionStart, ""); ok {
			t.Fatalf("a switch happened:\n%s", e.audit)
		}
		// The good token still works.
		if resp := fetchSwitch(t, e, admin, "/admin/loginas/3", good, `{}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("good token: %s", resp.Status)
		}
	})
}

func TestFlashShownOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		admin := e.client(t, "admin@example.com")
		flashes := func() int {
			_, body := page(t, admin, "/", http.StatusOK)
			return strings.Count(body, `class="flash"`)
		}
		// A refusal: the form posted to an administrator's ID goes back to
		// the page it came from, with a message.
		_, body := page(t, admin, "/admin/users/3", http.StatusOK)
		f, _ := findForm(t, body, "/admin/loginas/3")
		f.Action = "/admin/loginas/2"
		requireRedirect(t, post(t, admin, f, e.srv.URL+"/admin/users/2"), "/admin/users/2")
		if _, body := page(t, admin, "/admin/users/2", http.StatusOK); !strings.Contains(body, `class="flash"`) {
			t.Fatalf("no flash after a refusal:\n%s", body)
		}
		if n := flashes(); n != 0 {
			t.Fatalf("the refusal's flash shown again (%d)", n)
		}

		// A switch, then a return.
		_, body = page(t, admin, "/admin/users/3", http.StatusOK)
		f, _ = findForm(t, body, "/admin/loginas/3")
		requireRedirect(t, post(t, admin, f, e.srv.URL+"/admin/users/3"), "/")
		if n := flashes(); n != 1 {
			t.Fatalf("%d flashes on the page after the switch, want 1", n)
		}
		if n := flashes(); n != 0 {
			t.Fatalf("the switch's flash shown again (%d)", n)
		}
		_, body = page(t, admin, "/", http.StatusOK)
		f, _ = findForm(t, body, e.app.Plugin.LogoutURL())
		requireRedirect(t, post(t, admin, f, e.srv.URL+"/"), "/")
		if n := flashes(); n != 1 {
			t.Fatalf("%d flashes on the page after the return, want 1", n)
		}
		if n := flashes(); n != 0 {
			t.Fatalf("the return's flash shown again (%d)", n)
		}
	})
}

func TestPagesKeepStrictCSP(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		anon := loginastest.NewClient(e.srv.URL, nil)
		admin := e.client(t, "admin@example.com")
		check := func(c *loginastest.Client, path string) {
			t.Helper()
			resp, body := page(t, c, path, http.StatusOK)
			if resp.Header.Get("Content-Security-Policy") != csp {
				t.Errorf("%s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
			}
			doc, err := html.Parse(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for n := range doc.Descendants() {
				if n.Type != html.ElementNode {
					continue
				}
				if n.Data == "script" && (!strings.HasPrefix(attr(n, "src"), "/static/") || n.FirstChild != nil) {
					t.Errorf("%s: inline or foreign script %v", path, n.Attr)
				}
				if n.Data == "style" {
					t.Errorf("%s: inline <style>", path)
				}
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") || a.Key == "style" || strings.HasPrefix(strings.TrimSpace(a.Val), "javascript:") {
						t.Errorf("%s: <%s %s=%q> needs unsafe-inline", path, n.Data, a.Key, a.Val)
					}
				}
			}
		}
		check(anon, "/login")
		check(anon, "/")
		check(admin, "/")
		check(admin, "/admin/")
		check(admin, "/admin/users/3")
		admin.LoginAs(t, "3", "")
		check(admin, "/")
		for path, ctype := range map[string]string{"/static/app.js": "javascript", "/static/app.css": "text/css"} {
			if resp, _ := page(t, anon, path, http.StatusOK); !strings.Contains(resp.Header.Get("Content-Type"), ctype) {
				t.Errorf("%s: Content-Type %q", path, resp.Header.Get("Content-Type"))
			}
		}
	})
}

// syncBuffer is a bytes.Buffer for a logger that requests write to
// concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
