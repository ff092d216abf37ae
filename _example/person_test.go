package main

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/sqlstore"
	"golang.org/x/crypto/bcrypt"
)

// The person's side of the example: the Account access page, the notice
// after an impersonation, the End access button, the live list and
// consent.

// formField returns the value of the named hidden field of the form posting
// to action.
func formField(t *testing.T, page, action, field string) string {
	t.Helper()
	i := strings.Index(page, `action="`+action+`"`)
	if i < 0 {
		t.Fatalf("no form posting to %s:\n%s", action, page)
	}
	rest := page[i:]
	rest = rest[:strings.Index(rest, "</form>")]
	m := regexp.MustCompile(`name="` + field + `" value="([^"]*)"`).FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("the form posting to %s has no %s field:\n%s", action, field, rest)
	}
	return html.UnescapeString(m[1])
}

func TestAccountAccessPage(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	admin, alice := newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	admin.mustLogin("admin")
	alice.mustLogin("alice")
	if r := alice.get("/"); !strings.Contains(r.body, `href="/access"`) {
		t.Errorf("the navigation lacks the Account access link:\n%s", r.body)
	}
	if r := alice.get("/access"); !strings.Contains(r.body, "Nobody has signed in to your account on your behalf.") {
		t.Errorf("a fresh account's access page:\n%s", r.body)
	}
	if r := admin.switchTo(4, "ticket 41"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}

	// While her account is in use, every page alice sees says so, with a
	// button that ends it.
	page := alice.get("/profile")
	for _, want := range []string{"admin is signed in to your account right now.", "ticket 41", "End access"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("alice's page lacks %q:\n%s", want, page.body)
		}
	}
	if r := admin.returnHome(); r.status != http.StatusSeeOther {
		t.Fatalf("return: status %d", r.status)
	}

	// The notice, once.
	notice := "admin used your account."
	if r := alice.get("/"); !strings.Contains(r.body, notice) {
		t.Errorf("no notice on alice's next page:\n%s", r.body)
	}
	if r := alice.get("/"); strings.Contains(r.body, notice) {
		t.Errorf("the notice is shown twice")
	}
	access := alice.get("/access")
	for _, want := range []string{"Who used your account", "admin", "ticket 41", "they returned to their own account"} {
		if !strings.Contains(access.body, want) {
			t.Errorf("the access page lacks %q:\n%s", want, access.body)
		}
	}
}

func TestPersonEndsAccessInTheExample(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	srv, _ := startApp(t, func(c *config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	admin, alice := newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	admin.mustLogin("admin")
	alice.mustLogin("alice")
	if r := admin.switchTo(4, "ticket 42"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	page := alice.get("/").body
	form := url.Values{
		"loginas_csrf":  {formToken(t, page, "/admin/loginas/access/end")},
		"impersonation": {formField(t, page, "/admin/loginas/access/end", "impersonation")},
	}
	r := alice.post("/admin/loginas/access/end", form, "Referer", srv.URL+"/")
	if r.status != http.StatusSeeOther {
		t.Fatalf("End access: status %d:\n%s", r.status, r.body)
	}
	if r := alice.get("/"); !strings.Contains(r.body, "admin is no longer signed in as alice.") {
		t.Errorf("no confirmation for alice:\n%s", r.body)
	}
	admin.wantMe("", "")
	if r := admin.get("/login"); !strings.Contains(r.body, "alice ended your access to their account") {
		t.Errorf("the actor is not told the person ended it:\n%s", r.body)
	}
	for _, want := range []string{`msg=notification to=4 text="admin is signed in to your account. Reason: ticket 42"`, "(ended_by_target)"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks the notification %q:\n%s", want, logs.String())
		}
	}
}

func TestLivePage(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, nil)
	admin, root, staff := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	admin.mustLogin("admin")
	root.mustLogin("root")
	staff.mustLogin("staff")
	if r := admin.switchTo(5, "ticket 43"); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.status)
	}
	if r := root.get("/admin/"); !strings.Contains(r.body, `<span class="number">1</span> live now`) {
		t.Errorf("the dashboard lacks the live count:\n%s", r.body)
	}
	if r := staff.get("/admin/"); strings.Contains(r.body, "live now") {
		t.Errorf("the staff's dashboard counts live impersonations it may not see:\n%s", r.body)
	}
	live := root.get("/admin/live")
	for _, want := range []string{"Live impersonations", "<td>admin</td><td>bob</td>", "ticket 43"} {
		if !strings.Contains(live.body, want) {
			t.Errorf("the live page lacks %q:\n%s", want, live.body)
		}
	}
	if r := staff.get("/admin/live"); !strings.Contains(r.body, "Only superusers may see and end the live impersonations.") {
		t.Errorf("staff's live page:\n%s", r.body)
	}
	form := url.Values{
		"loginas_csrf":  {formToken(t, live.body, "/admin/loginas/access/end")},
		"impersonation": {formField(t, live.body, "/admin/loginas/access/end", "impersonation")},
	}
	if r := root.post("/admin/loginas/access/end", form, "Referer", srv.URL+"/admin/live"); r.status != http.StatusSeeOther || r.location() != "/admin/live" {
		t.Fatalf("End: %d to %q", r.status, r.location())
	}
	admin.wantMe("", "")
	if r := root.get("/admin/audit?action=end"); !strings.Contains(r.body, "<td>ended_by_admin</td>") {
		t.Errorf("the end is not audited as ended_by_admin:\n%s", r.body)
	}
}

func TestConsentInTheExample(t *testing.T) {
	t.Parallel()
	srv, _ := startApp(t, func(c *config) { c.RequireConsent = true })
	admin, alice := newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	admin.mustLogin("admin")
	alice.mustLogin("alice")
	if r := admin.get("/admin/users/4"); !strings.Contains(r.body, "This user has not allowed access to their account.") {
		t.Errorf("the user page without consent:\n%s", r.body)
	}
	access := alice.get("/access").body
	if !strings.Contains(access, "Support cannot sign in to your account.") || !strings.Contains(access, `<option value="24h0m0s">1 day</option>`) {
		t.Errorf("the consent form:\n%s", access)
	}
	grant := url.Values{"loginas_csrf": {formToken(t, access, "/admin/loginas/access/consent")}, "duration": {"1h0m0s"}}
	if r := alice.post("/admin/loginas/access/consent", grant, "Referer", srv.URL+"/access"); r.status != http.StatusSeeOther || r.location() != "/access" {
		t.Fatalf("grant: %d to %q:\n%s", r.status, r.location(), r.body)
	}
	access = alice.get("/access").body
	if !strings.Contains(access, "Support may sign in to your account until") {
		t.Errorf("after the grant:\n%s", access)
	}
	if r := admin.switchTo(4, "ticket 44"); r.status != http.StatusSeeOther {
		t.Fatalf("switch with consent: status %d", r.status)
	}
	i := strings.LastIndex(access, `action="/admin/loginas/access/consent"`)
	withdraw := url.Values{"loginas_csrf": {formToken(t, access[i:], "/admin/loginas/access/consent")}, "withdraw": {"1"}}
	if r := alice.post("/admin/loginas/access/consent", withdraw, "Referer", srv.URL+"/access"); r.status != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", r.status)
	}
	admin.wantMe("", "")
	if r := admin.get("/login"); !strings.Contains(r.body, "alice withdrew their consent") {
		t.Errorf("the actor is not told why:\n%s", r.body)
	}
}

// With ExternalCSRF the plugin's origin check lets through a request that
// carries neither Origin nor Sec-Fetch-Site, as every non-browser client
// sends it: the app's own CSRF middleware must refuse it, as this one (a
// double-submitted token) does.
func TestExternalCSRFNeedsTheAppsMiddleware(t *testing.T) {
	t.Parallel()
	for _, withMiddleware := range []bool{false, true} {
		t.Run(fmt.Sprintf("middleware=%v", withMiddleware), func(t *testing.T) {
			gin.SetMode(gin.TestMode)
			r := gin.New()
			r.Use(sessions.Sessions(sessionName, newCookieStore([]byte(testSecret))))
			if withMiddleware {
				r.Use(doubleSubmitCSRF)
			}
			users := map[string]loginas.User{
				"1": {ID: "1", Name: "admin", Superuser: true, Active: true},
				"4": {ID: "4", Name: "alice", Active: true},
			}
			_, err := loginas.Register(r, loginas.Options{
				FindUser: func(_ context.Context, id string) (loginas.User, error) {
					if u, ok := users[id]; ok {
						return u, nil
					}
					return loginas.User{}, loginas.ErrUserNotFound
				},
				SessionKey:   userIDKey,
				Secret:       deriveKey([]byte(testSecret), "loginas"),
				ExternalCSRF: true,
				Logger:       slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			r.POST("/login", func(c *gin.Context) {
				if err := loginas.RenewSession(c, map[string]any{userIDKey: "1"}); err != nil {
					c.AbortWithStatus(http.StatusServiceUnavailable)
				}
			})
			srv := httptest.NewServer(r)
			defer srv.Close()
			b := newBrowser(t, srv.URL)
			b.post("/login", url.Values{"csrf": {"t"}}, "Cookie", "csrf=t")
			// A script or curl: the session cookie, no Origin, no
			// Sec-Fetch-Site, no token.
			res := b.post("/admin/loginas/4", url.Values{}, "Accept", "application/json")
			if withMiddleware && res.status != http.StatusForbidden {
				t.Fatalf("a non-browser POST with the app's middleware: %d, want 403:\n%s", res.status, res.body)
			}
			if !withMiddleware && res.status != http.StatusOK {
				t.Fatalf("a non-browser POST without it: %d, want 200 (what the README warns about):\n%s", res.status, res.body)
			}
		})
	}
}

// doubleSubmitCSRF is an app's own CSRF middleware, reduced to its core: an
// unsafe request must send the csrf cookie's value again in the csrf form
// field.
func doubleSubmitCSRF(c *gin.Context) {
	if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		c.Next()
		return
	}
	cookie, err := c.Cookie("csrf")
	if err != nil || cookie == "" || c.PostForm("csrf") != cookie {
		c.AbortWithStatus(http.StatusForbidden)
		return
	}
	c.Next()
}

// seedAudit writes the events the flag asks for, and the pages read them.
func TestSeedAudit(t *testing.T) {
	t.Parallel()
	srv, app := startApp(t, func(c *config) { c.SeedAudit = 1200; c.SeedUsers = 5; c.BcryptCost = bcrypt.MinCost })
	events, err := app.db.Plugin.Events(context.Background(), sqlstore.EventQuery{})
	if err != nil || len(events) != 100 {
		t.Fatalf("the newest page: %d events, %v", len(events), err)
	}
	b := newBrowser(t, srv.URL)
	b.mustLogin("admin")
	page := b.get("/admin/audit")
	if !strings.Contains(page.body, "seeded ticket 599") || !strings.Contains(page.body, `rel="next"`) {
		t.Errorf("the audit page lacks the seeded events or the link to older ones:\n%.2000s", page.body)
	}
}
