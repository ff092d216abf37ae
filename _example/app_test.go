package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

const testSecret = "test secret, long enough for the example app"

// testClock is a clock the test moves by hand.
type testClock struct{ now atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.now.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *testClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// startApp serves the app built from a test config, changed by edit, on a
// loopback httptest server.
func startApp(t *testing.T, edit func(*config)) (*httptest.Server, *App) {
	t.Helper()
	cfg := config{
		Secret:      []byte(testSecret),
		MaxDuration: time.Hour,
		BcryptCost:  bcrypt.MinCost,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	router, app, err := newApp(context.Background(), cfg)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		if err := app.Close(); err != nil {
			t.Errorf("closing the app: %v", err)
		}
	})
	return srv, app
}

// browser is a client with its own cookie jar that does not follow
// redirects, so each answer can be checked.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) location() string { return r.header.Get("Location") }

// in returns the browser, with its cookies, reporting to the subtest t.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

func (b *browser) do(req *http.Request) reply {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string, headers ...string) reply {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, headers ...string) reply {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

func (b *browser) login(user, password string) reply {
	b.t.Helper()
	return b.post("/login", url.Values{"username": {user}, "password": {password}})
}

// mustLogin signs in and checks that it worked.
func (b *browser) mustLogin(user string) {
	b.t.Helper()
	if r := b.login(user, user); r.status != http.StatusSeeOther {
		b.t.Fatalf("login as %s: status %d, want 303; body:\n%s", user, r.status, r.body)
	}
}

// me is the decoded body of GET /me.
type me struct {
	ID             *int64  `json:"id"`
	Username       string  `json:"username"`
	IsImpersonated bool    `json:"is_impersonated"`
	Impersonator   *string `json:"impersonator"`
}

func (b *browser) me() (int, me) {
	b.t.Helper()
	r := b.get("/me")
	var m me
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		b.t.Fatalf("GET /me: %v in %q", err, r.body)
	}
	return r.status, m
}

// wantMe checks who /me says the browser is; an empty user means anonymous.
func (b *browser) wantMe(user, impersonator string) {
	b.t.Helper()
	status, m := b.me()
	switch {
	case user == "" && (status != http.StatusUnauthorized || m.Username != "" || m.ID != nil):
		b.t.Fatalf("GET /me: %d %+v, want 401 anonymous", status, m)
	case user == "":
		return
	case status != http.StatusOK || m.Username != user || m.ID == nil:
		b.t.Fatalf("GET /me: %d %+v, want 200 as %s", status, m, user)
	case impersonator == "" && (m.IsImpersonated || m.Impersonator != nil):
		b.t.Fatalf("GET /me: %+v, want not impersonated", m)
	case impersonator != "" && (!m.IsImpersonated || m.Impersonator == nil || *m.Impersonator != impersonator):
		b.t.Fatalf("GET /me: %+v, want impersonated by %s", m, impersonator)
	}
}

var tokenRE = regexp.MustCompile(`name="loginas_csrf" value="([^"]+)"`)

// formToken returns the CSRF token of the form posting to action in page.
func formToken(t *testing.T, page, action string) string {
	t.Helper()
	i := strings.Index(page, `action="`+action+`"`)
	if i < 0 {
		t.Fatalf("no form posting to %s in the page:\n%s", action, page)
	}
	rest := page[i:]
	if end := strings.Index(rest, "</form>"); end >= 0 {
		rest = rest[:end]
	}
	m := tokenRE.FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("the form posting to %s has no loginas_csrf field:\n%s", action, rest)
	}
	return m[1]
}

// switchTo opens the target's user page and presses its login-as button.
func (b *browser) switchTo(id int, reason string) reply {
	b.t.Helper()
	page := b.get(fmt.Sprintf("/admin/users/%d", id))
	if page.status != http.StatusOK {
		b.t.Fatalf("GET /admin/users/%d: status %d", id, page.status)
	}
	action := fmt.Sprintf("/admin/loginas/%d", id)
	token := formToken(b.t, page.body, action)
	return b.post(action, url.Values{"loginas_csrf": {token}, "reason": {reason}})
}

// returnHome presses the banner's "Return to my account" button.
func (b *browser) returnHome() reply {
	b.t.Helper()
	home := b.get("/")
	if !strings.Contains(home.body, `class="loginas-banner"`) {
		b.t.Fatalf("no banner on the home page:\n%s", home.body)
	}
	token := formToken(b.t, home.body[strings.Index(home.body, `class="loginas-banner"`):], "/admin/loginas/logout")
	return b.post("/admin/loginas/logout", url.Values{"loginas_csrf": {token}})
}

func TestMeAnonymous(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	r := newBrowser(t, srv.URL).get("/me")
	if r.status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", r.status)
	}
	if want := `{"id":null,"username":"","is_impersonated":false}`; r.body != want {
		t.Errorf("body %s, want %s", r.body, want)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	tests := []struct {
		name, user, password string
		next                 string
		wantStatus           int
		wantLocation         string
		wantText             string
		wantMe               string
	}{
		{name: "superuser goes to the admin", user: "admin", password: "admin", wantStatus: 303, wantLocation: "/admin/", wantMe: "admin"},
		{name: "second superuser", user: "root", password: "root", wantStatus: 303, wantLocation: "/admin/", wantMe: "root"},
		{name: "staff goes to the admin", user: "staff", password: "staff", wantStatus: 303, wantLocation: "/admin/", wantMe: "staff"},
		{name: "regular user goes home", user: "alice", password: "alice", wantStatus: 303, wantLocation: "/", wantMe: "alice"},
		{name: "local next is followed", user: "bob", password: "bob", next: "/me", wantStatus: 303, wantLocation: "/me", wantMe: "bob"},
		{name: "foreign next is ignored", user: "bob", password: "bob", next: "//evil.example/x", wantStatus: 303, wantLocation: "/", wantMe: "bob"},
		{name: "wrong password", user: "admin", password: "nope", wantStatus: 401, wantText: "Wrong username or password."},
		{name: "unknown user", user: "mallory", password: "mallory", wantStatus: 401, wantText: "Wrong username or password."},
		{name: "empty form", wantStatus: 401, wantText: "Wrong username or password."},
		{name: "disabled user cannot log in", user: "carol", password: "carol", wantStatus: 403, wantText: "This account is disabled."},
		{name: "disabled user with a wrong password", user: "carol", password: "x", wantStatus: 401, wantText: "Wrong username or password."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t, srv.URL)
			form := url.Values{"username": {tt.user}, "password": {tt.password}}
			if tt.next != "" {
				form.Set("next", tt.next)
			}
			r := b.post("/login", form)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body:\n%s", r.status, tt.wantStatus, r.body)
			}
			if r.location() != tt.wantLocation {
				t.Errorf("Location %q, want %q", r.location(), tt.wantLocation)
			}
			if tt.wantText != "" {
				if !strings.Contains(r.body, tt.wantText) {
					t.Errorf("page lacks %q:\n%s", tt.wantText, r.body)
				}
				if !strings.Contains(r.body, `name="username"`) || !strings.Contains(r.body, `name="password"`) {
					t.Errorf("page has no login form again:\n%s", r.body)
				}
			}
			b.wantMe(tt.wantMe, "")
		})
	}
}

func TestLoginRefusesCrossOriginPosts(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	tests := []struct {
		name    string
		headers []string
		want    int
	}{
		{name: "cross-site fetch metadata", headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403},
		{name: "foreign origin", headers: []string{"Origin", "http://evil.example"}, want: 403},
		{name: "same-origin fetch metadata", headers: []string{"Sec-Fetch-Site", "same-origin"}, want: 303},
		{name: "own origin", headers: []string{"Origin", srv.URL}, want: 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t, srv.URL)
			r := b.post("/login", url.Values{"username": {"alice"}, "password": {"alice"}}, tt.headers...)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d", r.status, tt.want)
			}
			if tt.want == 403 {
				b.wantMe("", "")
			} else {
				b.wantMe("alice", "")
			}
		})
	}
}

func TestMeSignedIn(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	r := b.get("/me")
	if want := `{"id":1,"username":"admin","is_impersonated":false,"impersonator":null}`; r.status != 200 || r.body != want {
		t.Errorf("GET /me: %d %s, want 200 %s", r.status, r.body, want)
	}
}

func TestImpersonationCycle(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")

	r := b.switchTo(4, "ticket #42: <checkout> fails")
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("switch: %d to %q, want 303 to /; body:\n%s", r.status, r.location(), r.body)
	}
	b.wantMe("alice", "admin")

	home := b.get("/")
	for _, want := range []string{
		`class="loginas-banner"`,
		"You are signed in as alice. You are really admin.",
		"Return to my account",
		`<time datetime="`,
		"You are now signed in as alice", // the flash message
	} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home page lacks %q:\n%s", want, home.body)
		}
	}
	if again := b.get("/"); strings.Contains(again.body, "You are now signed in as alice") {
		t.Errorf("the flash message is shown twice")
	}

	for _, path := range []string{"/admin/", "/admin/users", "/admin/users/4", "/admin/audit"} {
		r := b.get(path)
		if r.status != http.StatusForbidden {
			t.Errorf("GET %s as alice: %d, want 403", path, r.status)
		}
		if !strings.Contains(r.body, "This page is not available as alice.") || !strings.Contains(r.body, `class="loginas-banner"`) {
			t.Errorf("GET %s as alice: no explanation or no banner:\n%s", path, r.body)
		}
	}

	if r := b.get("/login"); !strings.Contains(r.body, "Return to your own account before you sign in as someone else.") || strings.Contains(r.body, `action="/login"`) {
		t.Errorf("the login page offers a form while impersonating:\n%s", r.body)
	}
	if r := b.login("bob", "bob"); r.status != http.StatusConflict {
		t.Errorf("login while impersonating: %d, want 409", r.status)
	}
	b.wantMe("alice", "admin")

	r = b.returnHome()
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("return: %d to %q, want 303 to /", r.status, r.location())
	}
	b.wantMe("admin", "")
	if home := b.get("/"); strings.Contains(home.body, `class="loginas-banner"`) {
		t.Errorf("banner still shown after the return")
	}

	audit := b.get("/admin/audit")
	if audit.status != http.StatusOK {
		t.Fatalf("GET /admin/audit: %d", audit.status)
	}
	start := strings.Index(audit.body, `badge-start">start<`)
	end := strings.Index(audit.body, `badge-end">end<`)
	if start < 0 || end < 0 {
		t.Fatalf("audit page lacks the start or the end:\n%s", audit.body)
	}
	if end > start {
		t.Errorf("audit page is not newest first: end listed after start")
	}
	for _, want := range []string{
		"ticket #42: &lt;checkout&gt; fails", // the reason, escaped
		"<td>logout</td>",
		`<a href="/admin/users/1">admin</a>`,
		`<a href="/admin/users/4">alice</a>`,
		"<td>127.0.0.1</td>",
		"POST /admin/loginas/4",
	} {
		if !strings.Contains(audit.body, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
}

func TestLogoutButtonSignsOut(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("alice")
	home := b.get("/")
	token := formToken(t, home.body, "/admin/loginas/logout")
	if r := b.post("/admin/loginas/logout", url.Values{"loginas_csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: status %d, want 303", r.status)
	}
	b.wantMe("", "")
}

func TestUserPageButton(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	tests := []struct {
		name       string
		viewer     string
		target     int
		wantButton bool
		wantWhy    string
	}{
		{name: "superuser sees it on a regular user", viewer: "admin", target: 4, wantButton: true},
		{name: "superuser sees it on a staff user", viewer: "admin", target: 3, wantButton: true},
		{name: "not on another superuser", viewer: "admin", target: 2, wantWhy: "Superusers cannot be logged in as."},
		{name: "not on a disabled user", viewer: "admin", target: 6, wantWhy: "Disabled users cannot be logged in as."},
		{name: "not on oneself", viewer: "admin", target: 1, wantWhy: "This is your own account."},
		{name: "staff never sees it", viewer: "staff", target: 4, wantWhy: "Only superusers may log in as other users."},
		{name: "staff on their own page", viewer: "staff", target: 3, wantWhy: "Only superusers may log in as other users."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t, srv.URL)
			b.mustLogin(tt.viewer)
			r := b.get(fmt.Sprintf("/admin/users/%d", tt.target))
			if r.status != http.StatusOK {
				t.Fatalf("status %d", r.status)
			}
			action := fmt.Sprintf(`action="/admin/loginas/%d"`, tt.target)
			if got := strings.Contains(r.body, action); got != tt.wantButton {
				t.Errorf("button shown: %v, want %v", got, tt.wantButton)
			}
			if tt.wantButton && !strings.Contains(r.body, `name="reason"`) {
				t.Errorf("button without a reason field")
			}
			if !strings.Contains(r.body, tt.wantWhy) {
				t.Errorf("page lacks %q", tt.wantWhy)
			}
		})
	}
}

func TestUserPageNotFound(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	for _, path := range []string{"/admin/users/999", "/admin/users/0", "/admin/users/x", "/admin/users/-1", "/nowhere"} {
		if r := b.get(path); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
}

func TestAdminNeedsStaff(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	tests := []struct {
		name   string
		viewer string // "" for anonymous
		want   int
	}{
		{name: "anonymous", want: http.StatusSeeOther},
		{name: "regular user", viewer: "alice", want: http.StatusSeeOther},
		{name: "staff", viewer: "staff", want: http.StatusOK},
		{name: "superuser", viewer: "root", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t, srv.URL)
			if tt.viewer != "" {
				b.mustLogin(tt.viewer)
			}
			for _, path := range []string{"/admin/", "/admin/users", "/admin/users/5", "/admin/audit"} {
				r := b.get(path)
				if r.status != tt.want {
					t.Errorf("GET %s: %d, want %d", path, r.status, tt.want)
				}
				if tt.want == http.StatusSeeOther && r.location() != "/login?next="+url.QueryEscape(path) {
					t.Errorf("GET %s: Location %q, want the login page", path, r.location())
				}
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	tests := []struct {
		name, method, path string
		wantStatus         int
	}{
		{"home", "GET", "/", 200},
		{"login page", "GET", "/login", 200},
		{"me", "GET", "/me", 401},
		{"stylesheet", "GET", "/static/style.css", 200},
		{"icon", "GET", "/static/favicon.svg", 200},
		{"not found", "GET", "/nope", 404},
		{"admin redirect", "GET", "/admin/", 303},
		{"plugin route, wrong method", "GET", "/admin/loginas/4", 405},
		{"plugin route, no token", "POST", "/admin/loginas/4", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := b.in(t)
			var r reply
			if tt.method == "POST" {
				r = b.post(tt.path, url.Values{})
			} else {
				r = b.get(tt.path)
			}
			if r.status != tt.wantStatus {
				t.Errorf("status %d, want %d", r.status, tt.wantStatus)
			}
			if got := r.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q", got)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if strings.Contains(r.body, "<script") || strings.Contains(r.body, "style=") || strings.Contains(r.body, "<style") {
				t.Errorf("inline script or style in the page")
			}
		})
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	r := b.login("alice", "alice")
	var found bool
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil || c.Name != sessionName {
			continue
		}
		found = true
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Errorf("session cookie %q: want HttpOnly, SameSite=Lax, Path=/", line)
		}
	}
	if !found {
		t.Fatalf("no %q cookie in %v", sessionName, r.header.Values("Set-Cookie"))
	}
}

func TestRefusedSwitchFlashesAndIsAudited(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	page := b.get("/admin/users/4")
	token := formToken(t, page.body, "/admin/loginas/4")

	// A valid token used against a superuser's ID: refused by the plugin.
	r := b.post("/admin/loginas/2", url.Values{"loginas_csrf": {token}}, "Referer", srv.URL+"/admin/users/2")
	if r.status != http.StatusSeeOther || r.location() != "/admin/users/2" {
		t.Fatalf("refused switch: %d to %q, want 303 back to /admin/users/2", r.status, r.location())
	}
	back := b.get("/admin/users/2")
	if !strings.Contains(back.body, `class="flash"`) {
		t.Errorf("no flash message after a refusal:\n%s", back.body)
	}
	b.wantMe("admin", "")
	audit := b.get("/admin/audit?action=denied")
	if !strings.Contains(audit.body, `badge-denied">denied<`) || !strings.Contains(audit.body, "<td>superuser</td>") {
		t.Errorf("the refusal is not on the audit page:\n%s", audit.body)
	}
}

func TestForgedSwitchGetsTheErrorPage(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	tests := []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{name: "no token", form: url.Values{}},
		{name: "wrong token", form: url.Values{"loginas_csrf": {strings.Repeat("A", 86)}}},
		{name: "cross-site", form: url.Values{}, headers: []string{"Sec-Fetch-Site", "cross-site"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := b.in(t)
			r := b.post("/admin/loginas/4", tt.form, tt.headers...)
			if r.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", r.status)
			}
			if !strings.Contains(r.body, `class="error-page"`) || r.header.Get("Content-Security-Policy") == "" {
				t.Errorf("not the app's error page:\n%s", r.body)
			}
			b.wantMe("admin", "")
		})
	}
}

func TestImpersonationExpires(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	srv, _ := startApp(t, func(c *config) {
		c.Clock = clock.Now
		c.MaxDuration = 90 * time.Second
	})
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	if r := b.switchTo(5, "expiry"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	b.wantMe("bob", "admin")
	clock.Advance(91 * time.Second)
	b.wantMe("", "") // signed out, not turned back into admin

	b.mustLogin("admin")
	audit := b.get("/admin/audit?action=end")
	if !strings.Contains(audit.body, "<td>expired</td>") {
		t.Errorf("no end event with cause expired:\n%s", audit.body)
	}
}

func TestSeedUsers(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, func(c *config) { c.SeedUsers = 3 })
	if !app.seeded {
		t.Errorf("a fresh database was not seeded")
	}
	tests := []struct {
		user   string
		wantID int64
	}{
		{"admin", 1}, {"root", 2}, {"staff", 3}, {"alice", 4}, {"bob", 5},
		{"user0001", 7}, {"user0002", 8}, {"user0003", 9},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t, srv.URL)
			b.mustLogin(tt.user)
			if _, m := b.me(); m.ID == nil || *m.ID != tt.wantID || m.Username != tt.user {
				t.Errorf("/me: %+v, want ID %d", m, tt.wantID)
			}
		})
	}
	t.Run("no more than asked", func(t *testing.T) {
		t.Parallel()
		if r := newBrowser(t, srv.URL).login("user0004", "user0004"); r.status != http.StatusUnauthorized {
			t.Errorf("user0004 logged in: status %d", r.status)
		}
	})
	t.Run("superuser can log in as one", func(t *testing.T) {
		t.Parallel()
		b := newBrowser(t, srv.URL)
		b.mustLogin("admin")
		if r := b.switchTo(8, "load"); r.status != http.StatusSeeOther {
			t.Fatalf("switch: status %d", r.status)
		}
		b.wantMe("user0002", "admin")
	})
}

func TestSharedDatabaseIsSeededOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	srv1, app1 := startApp(t, func(c *config) { c.DBPath = path })
	srv2, app2 := startApp(t, func(c *config) { c.DBPath = path; c.SeedUsers = 2 })
	if !app1.seeded || app2.seeded {
		t.Errorf("seeded: first %v, second %v; want only the first", app1.seeded, app2.seeded)
	}
	n, err := app2.db.CountUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n.Total != len(seedUsers)+2 {
		t.Errorf("%d users, want %d", n.Total, len(seedUsers)+2)
	}
	// Both instances share one secret, so an impersonation started on one
	// is seen on the other (cookie sessions here; Redis in the e2e tests).
	b := newBrowser(t, srv1.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "shared"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	jar := b.c.Jar
	u1, _ := url.Parse(srv1.URL)
	u2, _ := url.Parse(srv2.URL)
	jar.SetCookies(u2, jar.Cookies(u1))
	b.base = srv2.URL
	b.wantMe("alice", "admin")
	b.base = srv1.URL
	b.returnHome()
	b.base = srv2.URL
	jar.SetCookies(u2, jar.Cookies(u1))
	if audit := b.get("/admin/audit"); !strings.Contains(audit.body, `<td class="reason">shared</td>`) {
		t.Errorf("the second instance does not show the first one's audit events:\n%s", audit.body)
	}
}

// flakyStore is a cookie store that fails to load or save sessions on demand.
type flakyStore struct {
	cookie.Store
	failLoad, failSave atomic.Bool
}

var errStoreDown = errors.New("store down")

func (s *flakyStore) Get(r *http.Request, name string) (*gsessions.Session, error) {
	if s.failLoad.Load() {
		sess := gsessions.NewSession(s, name)
		sess.IsNew = true
		return sess, errStoreDown
	}
	return gsessions.GetRegistry(r).Get(s, name)
}

// New decodes the cookie with the cookie store, into a session that saves
// through s.
func (s *flakyStore) New(r *http.Request, name string) (*gsessions.Session, error) {
	inner, err := s.Store.New(r, name)
	sess := gsessions.NewSession(s, name)
	sess.ID, sess.Values, sess.Options, sess.IsNew = inner.ID, inner.Values, inner.Options, inner.IsNew
	return sess, err
}

func (s *flakyStore) Save(r *http.Request, w http.ResponseWriter, sess *gsessions.Session) error {
	if s.failSave.Load() {
		return errStoreDown
	}
	return s.Store.Save(r, w, sess)
}

var _ sessions.Store = (*flakyStore)(nil)

func TestSessionStoreFailure(t *testing.T) {
	t.Parallel()
	store := &flakyStore{Store: cookie.NewStore([]byte(testSecret))}
	srv, _ := startApp(t, func(c *config) { c.store = store })
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	page := b.get("/admin/users/4")
	token := formToken(t, page.body, "/admin/loginas/4")

	t.Run("load fails: 503 page", func(t *testing.T) {
		b := b.in(t)
		store.failLoad.Store(true)
		defer store.failLoad.Store(false)
		for _, path := range []string{"/", "/me", "/admin/"} {
			r := b.get(path)
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("GET %s: %d, want 503", path, r.status)
			}
			if !strings.Contains(r.body, "The session store is unavailable, try again") {
				t.Errorf("GET %s: page lacks the explanation:\n%s", path, r.body)
			}
			if r.header.Get("Content-Security-Policy") != contentSecurityPolicy {
				t.Errorf("GET %s: no CSP on the error page", path)
			}
		}
		r := b.get("/admin/", "Accept", "application/json")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `"error":"The session store is unavailable`) {
			t.Errorf("JSON client: %d %s", r.status, r.body)
		}
		r = b.get("/me", "Accept", "*/*")
		if r.status != http.StatusServiceUnavailable || !strings.HasPrefix(r.body, `{"error":"The session store is unavailable`) {
			t.Errorf("/me answers JSON whatever the client accepts: %d %s", r.status, r.body)
		}
	})
	t.Run("save fails during a switch: still admin", func(t *testing.T) {
		b := b.in(t)
		store.failSave.Store(true)
		r := b.post("/admin/loginas/4", url.Values{"loginas_csrf": {token}})
		store.failSave.Store(false)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "The session store is unavailable, try again") {
			t.Errorf("switch: %d, want 503 with the explanation:\n%s", r.status, r.body)
		}
		b.wantMe("admin", "")
	})
	t.Run("save fails during a login", func(t *testing.T) {
		other := newBrowser(t, srv.URL)
		store.failSave.Store(true)
		r := other.login("bob", "bob")
		store.failSave.Store(false)
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("login: %d, want 503", r.status)
		}
		other.wantMe("", "")
	})
	t.Run("the store is back", func(t *testing.T) {
		b := b.in(t)
		b.wantMe("admin", "")
	})
}

func TestConcurrentRequestsOnOneSession(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "concurrency"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for range 20 {
		wg.Go(func() {
			for _, path := range []string{"/me", "/"} {
				resp, err := b.c.Get(srv.URL + path)
				if err != nil {
					errs <- err.Error()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Sprintf("GET %s: %d", path, resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	b.wantMe("alice", "admin")
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// startRedis runs a throw-away redis-server on a free loopback port and
// returns its address and a function that stops it.
func startRedis(t *testing.T) (string, func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found; install it: apt-get install -y chromium redis-server")
		}
		t.Skip("redis-server not found; install it: apt-get install -y chromium redis-server")
	}
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, stop
}

func TestRedisSessions(t *testing.T) {
	t.Parallel()
	addr, stopRedis := startRedis(t)
	srv, _ := startApp(t, func(c *config) { c.RedisAddr = addr })
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	u, _ := url.Parse(srv.URL)
	before := b.c.Jar.Cookies(u)

	if r := b.switchTo(4, "redis"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	b.wantMe("alice", "admin")

	// A copy of the cookie from before the switch no longer works: the
	// session got a new ID and the old one was deleted from Redis.
	replay := newBrowser(t, srv.URL)
	replay.c.Jar.SetCookies(u, before)
	replay.wantMe("", "")

	if r := b.returnHome(); r.status != http.StatusSeeOther {
		t.Fatalf("return: status %d", r.status)
	}
	b.wantMe("admin", "")

	stopRedis()
	r := b.get("/me")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "The session store is unavailable, try again") {
		t.Errorf("GET /me with Redis down: %d, want 503 with the explanation:\n%s", r.status, r.body)
	}
	anonymous := newBrowser(t, srv.URL)
	if r := anonymous.get("/login"); r.status != http.StatusOK {
		t.Errorf("GET /login with Redis down, no cookie: %d, want 200", r.status)
	}
	if r := anonymous.login("bob", "bob"); r.status != http.StatusServiceUnavailable {
		t.Errorf("POST /login with Redis down: %d, want 503", r.status)
	}
}

func TestRedisUnreachableAtStart(t *testing.T) {
	t.Parallel()
	_, _, err := newApp(context.Background(), config{
		Secret:      []byte(testSecret),
		MaxDuration: time.Hour,
		BcryptCost:  bcrypt.MinCost,
		RedisAddr:   fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err == nil || !strings.Contains(err.Error(), "connecting to Redis") {
		t.Errorf("newApp: %v, want a Redis connection error", err)
	}
}

// The README's flag table has a row for every flag the app takes.
func TestReadmeListsEveryFlag(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var usage strings.Builder
	if _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h): %v, want flag.ErrHelp", err)
	}
	flags := regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(usage.String(), -1)
	if len(flags) < 10 {
		t.Fatalf("found %d flags in the usage text:\n%s", len(flags), usage.String())
	}
	for _, f := range flags {
		if !strings.Contains(string(readme), "| `"+f[1]+"` |") {
			t.Errorf("README.md's flag table has no row for %s", f[1])
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		args        []string
		wantErr     bool
		wantWarning bool
		check       func(t *testing.T, c config)
	}{
		{name: "defaults", args: nil, wantWarning: true, check: func(t *testing.T, c config) {
			if c.Addr != "127.0.0.1:8080" || c.DBPath != "" || c.RedisAddr != "" || c.MaxDuration != time.Hour || c.SeedUsers != 0 || len(c.Secret) != 32 || c.ReadOnly {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "every flag", args: []string{"-addr", "127.0.0.1:0", "-db", "x.db", "-redis", "127.0.0.1:6379", "-secret", testSecret, "-max-duration", "90s", "-seed-users", "250", "-read-only", "-entry-cache", "2s"}, check: func(t *testing.T, c config) {
			if c.Addr != "127.0.0.1:0" || c.DBPath != "x.db" || c.RedisAddr != "127.0.0.1:6379" || string(c.Secret) != testSecret || c.MaxDuration != 90*time.Second || c.SeedUsers != 250 || !c.ReadOnly || c.EntryCache != 2*time.Second {
				t.Errorf("parsed: %+v", c)
			}
		}},
		{name: "short secret warns", args: []string{"-secret", "short"}, wantWarning: true},
		{name: "bad duration", args: []string{"-max-duration", "soon"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			c, err := parseFlags(tt.args, &stderr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error: %v", err, tt.wantErr)
			}
			if got := strings.Contains(stderr.String(), "warning:"); !tt.wantErr && got != tt.wantWarning {
				t.Errorf("warning printed: %v, want %v (%q)", got, tt.wantWarning, stderr.String())
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestNewAppRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*config)
	}{
		{"no secret", func(c *config) { c.Secret = nil }},
		{"zero time limit", func(c *config) { c.MaxDuration = 0 }},
		{"negative seed users", func(c *config) { c.SeedUsers = -1 }},
		{"too many seed users", func(c *config) { c.SeedUsers = 10000 }},
		{"entry cache over the plugin's maximum", func(c *config) { c.EntryCache = time.Minute }},
		{"database in a missing directory", func(c *config) { c.DBPath = filepath.Join(t.TempDir(), "missing", "x.db") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config{Secret: []byte(testSecret), MaxDuration: time.Hour, BcryptCost: bcrypt.MinCost}
			tt.edit(&cfg)
			if _, _, err := newApp(context.Background(), cfg); err == nil {
				t.Errorf("newApp accepted the config")
			}
		})
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-secret", testSecret, "-seed-users", "2"}, outW, io.Discard)
		_ = outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	var out []string
	var base string
	for lines.Scan() {
		out = append(out, lines.Text())
		if rest, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			base = rest
			break
		}
	}
	if base == "" {
		t.Fatalf("no listening line in %q (run: %v)", out, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	printed := strings.Join(out, "\n")
	for _, want := range []string{"admin    / admin", "root     / root", "staff    / staff", "alice    / alice", "bob      / bob", "carol    / carol", "disabled", "user0001..user0002"} {
		if !strings.Contains(printed, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, printed)
		}
	}
	b := newBrowser(t, base)
	b.wantMe("", "")
	b.mustLogin("user0002")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}

// syncBuffer is a log destination that tests can read while the app writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
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

func TestRequestLog(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	srv, _ := startApp(t, func(c *config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "log"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	b.get("/admin/users?who=alice")
	var plain, impersonated bool
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "msg=request method=GET path=/admin/users/4 status=200") && strings.Contains(line, "user=admin") {
			plain = true
		}
		if strings.Contains(line, "msg=request method=GET path=/admin/users status=403") &&
			strings.Contains(line, `as="admin as alice"`) && strings.Contains(line, "actor_id=1 target_id=4") {
			impersonated = true
		}
	}
	if !plain || !impersonated {
		t.Errorf("request log lacks a line (admin's own: %v, admin as alice: %v):\n%s", plain, impersonated, logs.String())
	}
}

func TestUserListSearchAndPages(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, func(c *config) { c.SeedUsers = 60 })
	b := newBrowser(t, srv.URL)
	b.mustLogin("staff")
	tests := []struct {
		name, query string
		want        []string
		wantNot     []string
	}{
		{name: "everyone", query: "", want: []string{">admin</a>", ">user0044</a>", `href="/admin/users?after=50" rel="next"`}, wantNot: []string{">user0045</a>"}},
		{name: "second page", query: "?after=50", want: []string{">user0045</a>", ">user0060</a>"}, wantNot: []string{">admin</a>", `rel="next"`}},
		{name: "page past the end", query: "?after=99", wantNot: []string{">user0060</a>", `rel="next"`}},
		{name: "by name", query: "?q=alic", want: []string{"Users matching “alic”", ">alice</a>"}, wantNot: []string{">bob</a>"}},
		{name: "by e-mail", query: "?q=bob%40example.com", want: []string{">bob</a>"}, wantNot: []string{">alice</a>"}},
		{name: "case does not matter", query: "?q=ALICE", want: []string{">alice</a>"}},
		{name: "like wildcards are literal", query: "?q=%25", wantNot: []string{">admin</a>", ">alice</a>"}},
		{name: "html in the query is escaped", query: "?q=%3Cb%3E", want: []string{"&lt;b&gt;"}, wantNot: []string{"<b>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.in(t).get("/admin/users" + tt.query)
			if r.status != http.StatusOK {
				t.Fatalf("status %d", r.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(r.body, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}

func TestAccountPageIsGuarded(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	own := newBrowser(t, srv.URL)
	own.mustLogin("alice")
	if r := own.get("/account"); r.status != http.StatusOK || !strings.Contains(r.body, `action="/account/password"`) {
		t.Fatalf("GET /account as alice: %d, want 200 with the form", r.status)
	}
	if r := newBrowser(t, srv.URL).get("/account"); r.status != http.StatusSeeOther || r.location() != "/login?next=%2Faccount" {
		t.Errorf("GET /account anonymous: %d to %q, want 303 to the login page", r.status, r.location())
	}

	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "guard"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	for _, r := range []reply{
		b.get("/account"),
		b.post("/account/password", url.Values{"current": {"alice"}, "new": {"new password"}, "confirm": {"new password"}}),
	} {
		if r.status != http.StatusForbidden {
			t.Errorf("status %d, want 403", r.status)
		}
		if !strings.Contains(r.body, "This page is not available while you are signed in as another user.") || !strings.Contains(r.body, `class="loginas-banner"`) {
			t.Errorf("no explanation or no banner:\n%s", r.body)
		}
	}
	if r := newBrowser(t, srv.URL).login("alice", "alice"); r.status != http.StatusSeeOther {
		t.Errorf("alice's password changed through an impersonation")
	}
	b.returnHome()
	if audit := b.get("/admin/audit?action=denied"); !strings.Contains(audit.body, "<td>guarded</td>") {
		t.Errorf("the guarded refusal is not audited:\n%s", audit.body)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("bob")
	tests := []struct {
		name                  string
		current, next, repeat string
		want                  int
		wantText              string
	}{
		{"wrong current password", "nope", "a new password", "a new password", 422, "The current password is wrong."},
		{"too short", "bob", "short", "short", 422, "The new password must have 8 to 72 bytes."},
		{"too long", "bob", strings.Repeat("x", 73), strings.Repeat("x", 73), 422, "The new password must have 8 to 72 bytes."},
		{"repeated wrong", "bob", "a new password", "another one", 422, "The two new passwords differ."},
		{"accepted", "bob", "a new password", "a new password", 303, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.in(t).post("/account/password", url.Values{"current": {tt.current}, "new": {tt.next}, "confirm": {tt.repeat}})
			if r.status != tt.want || !strings.Contains(r.body, tt.wantText) {
				t.Errorf("status %d, want %d with %q:\n%s", r.status, tt.want, tt.wantText, r.body)
			}
		})
	}
	if r := b.get("/account"); !strings.Contains(r.body, "Your password has been changed.") {
		t.Errorf("no confirmation after the change")
	}
	b.wantMe("bob", "")
	if r := newBrowser(t, srv.URL).login("bob", "bob"); r.status != http.StatusUnauthorized {
		t.Errorf("old password: %d, want 401", r.status)
	}
	if r := newBrowser(t, srv.URL).login("bob", "a new password"); r.status != http.StatusSeeOther {
		t.Errorf("new password: %d, want 303", r.status)
	}
	if r := b.post("/account/password", url.Values{"current": {"a new password"}}, "Sec-Fetch-Site", "cross-site"); r.status != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", r.status)
	}
}

func TestDisablingTheTargetEndsTheImpersonation(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	actor := newBrowser(t, srv.URL)
	actor.mustLogin("admin")
	if r := actor.switchTo(5, "disable"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	actor.wantMe("bob", "admin")

	staff := newBrowser(t, srv.URL)
	staff.mustLogin("staff")
	if r := staff.post("/admin/users/5/active", url.Values{"active": {"0"}}); r.status != http.StatusForbidden {
		t.Errorf("staff disabling bob: %d, want 403", r.status)
	}
	actor.wantMe("bob", "admin")

	root := newBrowser(t, srv.URL)
	root.mustLogin("root")
	page := root.get("/admin/users/5")
	if !strings.Contains(page.body, `action="/admin/users/5/active"`) {
		t.Fatalf("no disable form on bob's page for root:\n%s", page.body)
	}
	for _, bad := range []url.Values{{}, {"active": {"yes"}}, {"active": {"01"}}} {
		if r := root.post("/admin/users/5/active", bad); r.status != http.StatusBadRequest {
			t.Errorf("POST /admin/users/5/active %v: %d, want 400", bad, r.status)
		}
	}
	actor.wantMe("bob", "admin") // nobody was disabled
	if r := root.post("/admin/users/5/active", url.Values{"active": {"0"}}); r.status != http.StatusSeeOther || r.location() != "/admin/users/5" {
		t.Fatalf("disabling bob: %d to %q", r.status, r.location())
	}
	if r := root.get("/admin/users/5"); !strings.Contains(r.body, "bob is disabled") {
		t.Errorf("no flash after disabling")
	}
	actor.wantMe("", "") // signed out, not back to admin
	if r := newBrowser(t, srv.URL).login("bob", "bob"); r.status != http.StatusForbidden {
		t.Errorf("disabled bob logged in: %d", r.status)
	}
	if r := root.get("/admin/audit?action=end"); !strings.Contains(r.body, "<td>revoked</td>") {
		t.Errorf("no end event with cause revoked:\n%s", r.body)
	}
	if r := root.post("/admin/users/5/active", url.Values{"active": {"1"}}); r.status != http.StatusSeeOther {
		t.Fatalf("enabling bob: %d", r.status)
	}
	newBrowser(t, srv.URL).mustLogin("bob")
	if r := root.post("/admin/users/2/active", url.Values{"active": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("disabling oneself: %d, want 303 with a message", r.status)
	}
	root.wantMe("root", "")
}

func TestEndAllImpersonations(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	srv, _ := startApp(t, func(c *config) { c.Clock = clock.Now })
	first := newBrowser(t, srv.URL)
	first.mustLogin("admin")
	if r := first.switchTo(4, "first"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	plain := newBrowser(t, srv.URL)
	plain.mustLogin("admin")
	clock.Advance(time.Second)

	root := newBrowser(t, srv.URL)
	root.mustLogin("root")
	if r := root.get("/admin/users/1"); !strings.Contains(r.body, `action="/admin/users/1/end-impersonations"`) {
		t.Fatalf("no end-all form on admin's page:\n%s", r.body)
	}
	if r := root.post("/admin/users/1/end-impersonations", nil); r.status != http.StatusSeeOther {
		t.Fatalf("end all: status %d", r.status)
	}
	first.wantMe("", "")
	plain.wantMe("admin", "") // the actor's own session stays

	clock.Advance(time.Second)
	if r := plain.switchTo(5, "after"); r.status != http.StatusSeeOther {
		t.Fatalf("switch after end all: status %d", r.status)
	}
	plain.wantMe("bob", "admin")
	if r := root.get("/admin/audit?action=end"); !strings.Contains(r.body, "<td>ended</td>") {
		t.Errorf("no end event with cause ended:\n%s", r.body)
	}
}

func TestReturnIsFinalAcrossInstances(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	srv1, _ := startApp(t, func(c *config) { c.DBPath = path })
	srv2, _ := startApp(t, func(c *config) { c.DBPath = path })
	b := newBrowser(t, srv1.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "stale copy"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	u1, _ := url.Parse(srv1.URL)
	u2, _ := url.Parse(srv2.URL)
	stale := b.c.Jar.Cookies(u1) // the impersonated session, as a request still in flight would save it back
	b.returnHome()

	// The signed cookie of the impersonation is still well-formed, but the
	// end recorded in the shared database makes the other instance refuse it.
	other := newBrowser(t, srv2.URL)
	other.c.Jar.SetCookies(u2, stale)
	other.wantMe("", "")
}

// newKeyRE finds the key shown once on the answer to a create.
var newKeyRE = regexp.MustCompile(`<code class="secret">(acme_[A-Za-z0-9_-]{43})</code>`)

// createKey posts the API key form and returns the key shown on the answer.
func (b *browser) createKey(name string) string {
	b.t.Helper()
	r := b.post("/account/api-keys", url.Values{"name": {name}})
	if r.status != http.StatusCreated {
		b.t.Fatalf("creating key %q: status %d, want 201; body:\n%s", name, r.status, r.body)
	}
	m := newKeyRE.FindStringSubmatch(r.body)
	if m == nil {
		b.t.Fatalf("creating key %q: no key on the answer:\n%s", name, r.body)
	}
	return m[1]
}

// storedKey is a row of api_keys as the database holds it.
type storedKey struct {
	id     int64
	userID int64
	name   string
	hash   []byte
	last4  string
}

func storedKeys(t *testing.T, app *App) []storedKey {
	t.Helper()
	rows, err := app.db.sql.Query(`SELECT id, user_id, name, key_hash, last4 FROM api_keys ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var keys []storedKey
	for rows.Next() {
		var k storedKey
		if err := rows.Scan(&k.id, &k.userID, &k.name, &k.hash, &k.last4); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, nil)
	alice := newBrowser(t, srv.URL)
	alice.mustLogin("alice")

	if r := newBrowser(t, srv.URL).get("/account/api-keys"); r.status != http.StatusSeeOther || r.location() != "/login?next=%2Faccount%2Fapi-keys" {
		t.Errorf("GET /account/api-keys anonymous: %d to %q, want 303 to the login page", r.status, r.location())
	}
	if r := alice.get("/account"); !strings.Contains(r.body, `<a href="/account/api-keys">`) || !strings.Contains(r.body, `<a href="/profile">`) {
		t.Errorf("the account page does not link the API keys and the profile:\n%s", r.body)
	}
	r := alice.get("/account/api-keys")
	for _, want := range []string{"You have no API keys.", `action="/account/api-keys"`, `href="/account/api-keys" aria-current="page"`} {
		if r.status != http.StatusOK || !strings.Contains(r.body, want) {
			t.Errorf("GET /account/api-keys: %d, page lacks %q:\n%s", r.status, want, r.body)
		}
	}

	t.Run("refused names", func(t *testing.T) {
		tests := []struct{ name, value string }{
			{"empty", ""},
			{"only spaces", "   "},
			{"too long", strings.Repeat("k", maxKeyNameLength+1)},
			{"control character", "deploy\x00key"},
			{"invalid UTF-8", "deploy\xff"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := alice.in(t).post("/account/api-keys", url.Values{"name": {tt.value}})
				if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Give the key a name of 1 to 64 characters.") {
					t.Errorf("status %d, want 422 with the reason:\n%s", r.status, r.body)
				}
				if newKeyRE.MatchString(r.body) {
					t.Errorf("a key was shown for a refused name")
				}
			})
		}
		if keys := storedKeys(t, app); len(keys) != 0 {
			t.Errorf("refused names stored %d keys", len(keys))
		}
	})

	first := alice.createKey("deploy <script>")
	second := alice.createKey(strings.Repeat("é", maxKeyNameLength)) // 64 characters, 128 bytes
	if first == second {
		t.Fatalf("two keys are the same: %s", first)
	}

	list := alice.get("/account/api-keys")
	for _, want := range []string{"deploy &lt;script&gt;", "…" + first[len(first)-4:], "…" + second[len(second)-4:], `<td><time datetime="`, `action="/account/api-keys/1/revoke"`} {
		if !strings.Contains(list.body, want) {
			t.Errorf("the list lacks %q:\n%s", want, list.body)
		}
	}
	for _, key := range []string{first, second} {
		if strings.Contains(list.body, key) || strings.Contains(list.body, key[:20]) {
			t.Errorf("the list shows a key again:\n%s", list.body)
		}
	}

	t.Run("only the hash is stored", func(t *testing.T) {
		keys := storedKeys(t, app)
		if len(keys) != 2 {
			t.Fatalf("%d keys stored, want 2", len(keys))
		}
		for i, key := range []string{first, second} {
			sum := sha256.Sum256([]byte(key))
			k := keys[i]
			if k.userID != 4 || !bytes.Equal(k.hash, sum[:]) || k.last4 != key[len(key)-4:] {
				t.Errorf("key %d stored as %+v, want alice's with the SHA-256 of the key", i, k)
			}
		}
		var n int
		if err := app.db.sql.QueryRow(`SELECT count(*) FROM api_keys WHERE instr(key_hash, ?1) OR instr(name, ?1) OR instr(last4, ?1)`, first[5:12]).Scan(&n); err != nil || n != 0 {
			t.Errorf("part of a key is stored in clear: %d rows, %v", n, err)
		}
	})

	t.Run("someone else's key", func(t *testing.T) {
		bob := newBrowser(t, srv.URL)
		bob.mustLogin("bob")
		if r := bob.get("/account/api-keys"); !strings.Contains(r.body, "You have no API keys.") {
			t.Errorf("bob sees keys:\n%s", r.body)
		}
		if r := bob.post("/account/api-keys/1/revoke", nil); r.status != http.StatusNotFound || !strings.Contains(r.body, "There is no such key.") {
			t.Errorf("bob revoking alice's key: %d, want 404:\n%s", r.status, r.body)
		}
		if keys := storedKeys(t, app); len(keys) != 2 {
			t.Errorf("bob revoked alice's key")
		}
	})

	t.Run("revoke", func(t *testing.T) {
		tests := []struct {
			name     string
			path     string
			headers  []string
			want     int
			wantKeys int
		}{
			{name: "cross-site post", path: "/account/api-keys/1/revoke", headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403, wantKeys: 2},
			{name: "not a number", path: "/account/api-keys/x/revoke", want: 404, wantKeys: 2},
			{name: "unknown key", path: "/account/api-keys/99/revoke", want: 404, wantKeys: 2},
			{name: "own key", path: "/account/api-keys/1/revoke", want: 303, wantKeys: 1},
			{name: "again", path: "/account/api-keys/1/revoke", want: 404, wantKeys: 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := alice.in(t)
				r := b.post(tt.path, nil, tt.headers...)
				if r.status != tt.want {
					t.Fatalf("status %d, want %d:\n%s", r.status, tt.want, r.body)
				}
				if tt.want == http.StatusSeeOther && r.location() != "/account/api-keys" {
					t.Errorf("Location %q, want /account/api-keys", r.location())
				}
				if keys := storedKeys(t, app); len(keys) != tt.wantKeys {
					t.Errorf("%d keys left, want %d", len(keys), tt.wantKeys)
				}
			})
		}
	})
	list = alice.get("/account/api-keys")
	if want := "The key “deploy &lt;script&gt;” (…" + first[len(first)-4:] + ") has been revoked."; !strings.Contains(list.body, want) {
		t.Errorf("no flash %q after the revoke:\n%s", want, list.body)
	}
	if strings.Contains(list.body, "…"+first[len(first)-4:]+"</code>") || !strings.Contains(list.body, "…"+second[len(second)-4:]+"</code>") {
		t.Errorf("the list after the revoke is wrong:\n%s", list.body)
	}
	if r := alice.post("/account/api-keys", url.Values{"name": {"x"}}, "Origin", "http://evil.example"); r.status != http.StatusForbidden {
		t.Errorf("cross-origin create: %d, want 403", r.status)
	}
}

func TestAPIKeyLimit(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, nil)
	b := newBrowser(t, srv.URL)
	b.mustLogin("bob")
	for i := range maxAPIKeys {
		b.createKey(fmt.Sprintf("key %d", i))
	}
	r := b.post("/account/api-keys", url.Values{"name": {"one more"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "You have 20 keys already: revoke one first.") || newKeyRE.MatchString(r.body) {
		t.Errorf("key over the limit: %d:\n%s", r.status, r.body)
	}
	if keys := storedKeys(t, app); len(keys) != maxAPIKeys {
		t.Errorf("%d keys stored, want %d", len(keys), maxAPIKeys)
	}
}

func TestAPIKeyIsNotInTheDatabaseFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, app := startApp(t, func(c *config) { c.DBPath = filepath.Join(dir, "keys.db") })
	b := newBrowser(t, srv.URL)
	b.mustLogin("alice")
	key := b.createKey("file check")
	if keys := storedKeys(t, app); len(keys) != 1 {
		t.Fatalf("%d keys stored, want 1", len(keys))
	}
	sum := sha256.Sum256([]byte(key))
	files, err := filepath.Glob(filepath.Join(dir, "keys.db*")) // the database, its WAL and shared memory
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files: %v", err)
	}
	var all []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
	}
	if bytes.Contains(all, []byte(key)) || bytes.Contains(all, []byte(key[5:25])) {
		t.Errorf("the key is written in the database files")
	}
	if !bytes.Contains(all, sum[:]) {
		t.Errorf("the key's hash is not in the database files (%d bytes read)", len(all))
	}
}

func TestAPIKeysAreGuardedWhileImpersonating(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, nil)
	alice := newBrowser(t, srv.URL)
	alice.mustLogin("alice")
	key := alice.createKey("alice's own")

	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "guarded keys"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	tests := []struct {
		name, method, path string
		form               url.Values
	}{
		{"list", http.MethodGet, "/account/api-keys", nil},
		{"create", http.MethodPost, "/account/api-keys", url.Values{"name": {"planted by support"}}},
		{"revoke", http.MethodPost, "/account/api-keys/1/revoke", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bt := b.in(t)
			var r reply
			if tt.method == http.MethodGet {
				r = bt.get(tt.path)
			} else {
				r = bt.post(tt.path, tt.form)
			}
			if r.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", r.status)
			}
			for _, want := range []string{"This page is not available while you are signed in as another user.", `class="loginas-banner"`} {
				if !strings.Contains(r.body, want) {
					t.Errorf("page lacks %q:\n%s", want, r.body)
				}
			}
			if newKeyRE.MatchString(r.body) || strings.Contains(r.body, "…"+key[len(key)-4:]) {
				t.Errorf("the guarded page shows a key:\n%s", r.body)
			}
		})
	}
	keys := storedKeys(t, app)
	if len(keys) != 1 || keys[0].name != "alice's own" {
		t.Errorf("keys after the guarded requests: %+v, want alice's one key", keys)
	}
	b.wantMe("alice", "admin") // a guarded refusal does not end the impersonation

	if r := b.returnHome(); r.status != http.StatusSeeOther {
		t.Fatalf("return: status %d", r.status)
	}
	audit := b.get("/admin/audit?action=denied")
	if n := strings.Count(audit.body, "<td>guarded</td>"); n != len(tests) {
		t.Errorf("%d guarded events, want %d:\n%s", n, len(tests), audit.body)
	}
	for _, want := range []string{"GET /account/api-keys<", "POST /account/api-keys<", "POST /account/api-keys/1/revoke<", `<a href="/admin/users/1">admin</a>`, `<a href="/admin/users/4">alice</a>`} {
		if !strings.Contains(audit.body, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
}

func TestProfile(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, nil)
	alice := newBrowser(t, srv.URL)
	alice.mustLogin("alice")

	if r := newBrowser(t, srv.URL).get("/profile"); r.status != http.StatusSeeOther || r.location() != "/login?next=%2Fprofile" {
		t.Errorf("GET /profile anonymous: %d to %q, want 303 to the login page", r.status, r.location())
	}
	if r := newBrowser(t, srv.URL).post("/profile", url.Values{"display_name": {"X"}}); r.status != http.StatusSeeOther {
		t.Errorf("POST /profile anonymous: %d, want 303 to the login page", r.status)
	}
	r := alice.get("/profile")
	for _, want := range []string{`name="display_name" value="Alice"`, `action="/profile"`, `href="/profile" aria-current="page"`} {
		if r.status != http.StatusOK || !strings.Contains(r.body, want) {
			t.Errorf("GET /profile: %d, page lacks %q:\n%s", r.status, want, r.body)
		}
	}
	if strings.Contains(r.body, `class="notice"`) || strings.Contains(r.body, `name="email"`) {
		t.Errorf("a note about impersonation, or an e-mail field, on alice's own profile:\n%s", r.body)
	}
	tests := []struct {
		name, displayName string
		headers           []string
		want              int
		wantText          string
	}{
		{name: "empty name", displayName: " ", want: 422, wantText: "The display name must have 1 to 100 characters."},
		{name: "name too long", displayName: strings.Repeat("n", 101), want: 422, wantText: "The display name must have 1 to 100 characters."},
		{name: "control character in the name", displayName: "Al\tice", want: 422, wantText: "The display name must have"},
		{name: "cross-site post", displayName: "Mallory", headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403},
		{name: "accepted", displayName: "  Alice <Liddell>  ", want: 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.in(t).post("/profile", url.Values{"display_name": {tt.displayName}}, tt.headers...)
			if r.status != tt.want || !strings.Contains(r.body, tt.wantText) {
				t.Fatalf("status %d, want %d with %q:\n%s", r.status, tt.want, tt.wantText, r.body)
			}
			if tt.want == 422 && !strings.Contains(r.body, `action="/profile"`) {
				t.Errorf("no form on the refusal:\n%s", r.body)
			}
			if tt.want == 303 && r.location() != "/profile" {
				t.Errorf("Location %q, want /profile", r.location())
			}
		})
	}
	u, err := app.db.UserByID(context.Background(), 4)
	if err != nil || u.DisplayName != "Alice <Liddell>" {
		t.Fatalf("stored profile: %+v, %v", u, err)
	}
	r = alice.get("/profile")
	for _, want := range []string{"The profile has been saved.", `value="Alice &lt;Liddell&gt;"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the profile after saving lacks %q:\n%s", want, r.body)
		}
	}
	if r := alice.get("/account"); !strings.Contains(r.body, "<dd>Alice &lt;Liddell&gt;</dd>") {
		t.Errorf("the account page lacks the new display name:\n%s", r.body)
	}
	alice.wantMe("alice", "") // the username does not change
}

// The e-mail address is a credential (password resets go there): it is
// changed on the account page, behind the plugin's Guard.
func TestChangeEmail(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, nil)
	alice := newBrowser(t, srv.URL)
	alice.mustLogin("alice")
	if r := alice.get("/account"); !strings.Contains(r.body, `name="email" value="alice@example.com"`) || !strings.Contains(r.body, `action="/account/email"`) {
		t.Errorf("the account page lacks the e-mail form:\n%s", r.body)
	}
	long := strings.Repeat("a", maxEmailLength-len("@example.com")+1) + "@example.com"
	tests := []struct {
		name, email string
		headers     []string
		want        int
		wantText    string
	}{
		{name: "empty", email: "", want: 422, wantText: "The e-mail address must contain an @"},
		{name: "no @", email: "alice.example.com", want: 422, wantText: "The e-mail address must contain an @"},
		{name: "nothing before the @", email: "@example.com", want: 422, wantText: "The e-mail address must contain an @"},
		{name: "nothing after the @", email: "alice@", want: 422, wantText: "The e-mail address must contain an @"},
		{name: "space", email: "al ice@example.com", want: 422, wantText: "The e-mail address must contain an @"},
		{name: "too long", email: long, want: 422, wantText: "at most 254 characters"},
		{name: "cross-site post", email: "m@evil.example", headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403},
		{name: "accepted", email: " alice@wonderland.example ", want: 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.in(t).post("/account/email", url.Values{"email": {tt.email}}, tt.headers...)
			if r.status != tt.want || !strings.Contains(r.body, tt.wantText) {
				t.Fatalf("status %d, want %d with %q:\n%s", r.status, tt.want, tt.wantText, r.body)
			}
		})
	}
	if u, err := app.db.UserByID(context.Background(), 4); err != nil || u.Email != "alice@wonderland.example" {
		t.Fatalf("stored e-mail: %+v, %v", u, err)
	}

	admin := newBrowser(t, srv.URL)
	admin.mustLogin("admin")
	if r := admin.switchTo(4, "ticket 5"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	r := admin.post("/account/email", url.Values{"email": {"support@evil.example"}})
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "This page is not available while you are signed in as another user.") {
		t.Errorf("changing alice's e-mail while impersonating: %d:\n%s", r.status, r.body)
	}
	if u, _ := app.db.UserByID(context.Background(), 4); u.Email != "alice@wonderland.example" {
		t.Errorf("an impersonator changed the e-mail to %q", u.Email)
	}
}

func TestProfileWhileImpersonating(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		readOnly bool
		wantNote string
		want     int
	}{
		{name: "changes allowed", wantNote: "Changes are allowed:", want: http.StatusSeeOther},
		{name: "read-only", readOnly: true, wantNote: "Read-only:", want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, app := startApp(t, func(c *config) { c.ReadOnly = tt.readOnly })
			b := newBrowser(t, srv.URL)
			b.mustLogin("admin")
			if r := b.switchTo(4, "fix alice's e-mail"); r.status != http.StatusSeeOther {
				t.Fatalf("switch: status %d", r.status)
			}

			page := b.get("/profile")
			if page.status != http.StatusOK || !strings.Contains(page.body, tt.wantNote) || !strings.Contains(page.body, `value="Alice"`) {
				t.Errorf("GET /profile: %d, want 200 with %q and alice's name:\n%s", page.status, tt.wantNote, page.body)
			}

			r := b.post("/profile", url.Values{"display_name": {"Alice L."}})
			if r.status != tt.want {
				t.Fatalf("POST /profile: %d, want %d:\n%s", r.status, tt.want, r.body)
			}
			u, err := app.db.UserByID(context.Background(), 4)
			if err != nil {
				t.Fatal(err)
			}
			changed := u.DisplayName == "Alice L."
			if changed == tt.readOnly {
				t.Errorf("alice's display name is %q; read-only %v", u.DisplayName, tt.readOnly)
			}
			if tt.readOnly {
				for _, want := range []string{"Changes are not allowed while you are signed in as another user.", `class="loginas-banner"`, "Signed in as <strong>alice</strong>"} {
					if !strings.Contains(r.body, want) {
						t.Errorf("the refusal lacks %q:\n%s", want, r.body)
					}
				}
				for _, path := range []string{"/profile", "/", "/me"} {
					if r := b.get(path); r.status != http.StatusOK {
						t.Errorf("GET %s while read-only: %d, want 200", path, r.status)
					}
				}
			} else if r := b.get("/profile"); !strings.Contains(r.body, "The profile has been saved.") || !strings.Contains(r.body, `value="Alice L."`) {
				t.Errorf("the profile after saving:\n%s", r.body)
			}
			b.wantMe("alice", "admin")

			if r := b.returnHome(); r.status != http.StatusSeeOther {
				t.Fatalf("return: status %d", r.status)
			}
			b.wantMe("admin", "")
			// Back as themselves, the actor may change their own profile in
			// either mode: read-only concerns impersonated sessions only.
			if r := b.post("/profile", url.Values{"display_name": {"The Admin"}}); r.status != http.StatusSeeOther {
				t.Errorf("admin's own profile: %d, want 303", r.status)
			}

			audit := b.get("/admin/audit")
			denied := strings.Count(audit.body, `badge-denied">denied<`)
			switch {
			case strings.Count(audit.body, `badge-start">start<`) != 1 || strings.Count(audit.body, `badge-end">end<`) != 1:
				t.Errorf("the audit trail lacks the start or the end:\n%s", audit.body)
			case !tt.readOnly && denied != 0:
				t.Errorf("an allowed change is audited as a refusal:\n%s", audit.body)
			case tt.readOnly && (denied != 1 || !strings.Contains(audit.body, "<td>read_only</td>") || !strings.Contains(audit.body, "POST /profile<")):
				t.Errorf("the read-only refusal is not audited once as denied, read_only, POST /profile:\n%s", audit.body)
			}
		})
	}
}

func TestReadOnlyRefusesEveryChange(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, func(c *config) { c.ReadOnly = true })
	alice := newBrowser(t, srv.URL)
	alice.mustLogin("alice")
	alice.createKey("before") // read-only does not concern alice's own session

	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	if r := b.switchTo(4, "read-only"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	tests := []struct {
		name, path string
		form       url.Values
	}{
		{"profile", "/profile", url.Values{"display_name": {"X"}, "email": {"x@example.com"}}},
		{"guarded route", "/account/api-keys", url.Values{"name": {"planted"}}},
		{"login form", "/login", url.Values{"username": {"bob"}, "password": {"bob"}}},
		{"another switch", "/admin/loginas/5", nil},
		{"unknown page", "/nowhere", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.in(t).post(tt.path, tt.form)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "Changes are not allowed while you are signed in as another user.") {
				t.Errorf("POST %s: %d, want 403 with the read-only message:\n%s", tt.path, r.status, r.body)
			}
		})
	}
	if keys := storedKeys(t, app); len(keys) != 1 {
		t.Errorf("%d keys, want alice's one", len(keys))
	}
	b.wantMe("alice", "admin")
	if r := b.returnHome(); r.status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("return while read-only: %d to %q, want 303 to /", r.status, r.location())
	}
	b.wantMe("admin", "")
	if r := b.get("/admin/audit?action=denied"); strings.Count(r.body, "<td>read_only</td>") != len(tests) {
		t.Errorf("want %d read_only events:\n%s", len(tests), r.body)
	}
}
