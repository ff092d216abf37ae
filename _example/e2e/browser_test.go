package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Selectors of the example's pages that the tests rely on.
const (
	aliceButtonForm = `form[action="/admin/loginas/4"]`
	banner          = `.loginas-banner`
)

// browserLifetime bounds the life of one test's Chromium.
const browserLifetime = 3 * time.Minute

// newBrowser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab. The browser is closed when the test ends.
// Start the app first: the browser's lifetime runs from here.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := requireTool(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1200, 800),
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserLifetime)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // also waits for the browser to exit
		cancel()
	})
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return tabCtx
}

// newPerson opens a tab in a new browser context of the browser: its own
// cookies and storage, as a second browser on another machine would have.
// It is closed when the test ends.
func newPerson(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a new browser context: %v", err)
	}
	return ctx
}

// stepTimeout bounds one browser step, so a page that never comes fails the
// test with the step's name instead of hanging.
const stepTimeout = 30 * time.Second

// do runs browser steps and fails the test on an error, naming the step and
// the page the browser was on.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(stepCtx, actions...); err != nil {
		t.Fatalf("%s: %v\n%s", step, err, pageSummary(ctx))
	}
}

// runValue runs one browser action that returns a value.
func runValue[T any](t *testing.T, ctx context.Context, step string, action chromedp.Action[T]) T {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(stepCtx, action)
	if err != nil {
		t.Fatalf("%s: %v\n%s", step, err, pageSummary(ctx))
	}
	return v
}

// click clicks an element that submits a form and waits for the page that
// the submission leads to.
func click(t *testing.T, ctx context.Context, step, selector string) {
	t.Helper()
	waitForPage(t, ctx, step, chromedp.Click(chromedp.CSS(selector)))
}

// waitForPage runs an action that leads to another page and waits until
// that page has loaded.
func waitForPage(t *testing.T, ctx context.Context, step string, action chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(stepCtx, action); err != nil {
		t.Fatalf("%s: %v\n%s", step, err, pageSummary(ctx))
	}
}

// pageSummary tells where the browser is, for failure messages.
func pageSummary(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return "page " + loc + ":\n" + tail(text, 2000)
}

// bodyText returns the visible text of the page.
func bodyText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return runValue(t, ctx, "reading the page", chromedp.Evaluate[string](`document.body.innerText`))
}

// browserMe opens /me in the browser (the app's Content-Security-Policy
// allows no fetch from its pages) and reads the JSON it shows. The browser
// is left on /me.
func browserMe(t *testing.T, ctx context.Context, base string) meInfo {
	t.Helper()
	res := runValue(t, ctx, "opening /me", chromedp.NavigateResponse(base+"/me"))
	body := runValue(t, ctx, "reading /me", chromedp.Evaluate[string](
		`(document.querySelector("pre") || document.body).textContent`))
	m, err := decodeMe(int(res.Status), body)
	if err != nil {
		t.Fatalf("GET /me in the browser: %v", err)
	}
	return m
}

// signIn fills and submits the login form.
func signIn(t *testing.T, ctx context.Context, base, username, password string) {
	t.Helper()
	do(t, ctx, "opening /login",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
	)
	waitForPage(t, ctx, "submitting the login form", chromedp.Submit(chromedp.CSS(`input[name="password"]`)))
	if me := browserMe(t, ctx, base); me.Username != username || me.IsImpersonated {
		t.Fatalf("after signing in as %s, /me says %+v\n%s", username, me, pageSummary(ctx))
	}
}

// screenshot saves a full-page PNG into $LOGINAS_SCREENSHOTS, when it is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("LOGINAS_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := runValue(t, ctx, "taking screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Join(dir, name))
}

// switchToAlice opens alice's user page, types a reason and clicks
// "Log in as user", then waits for the page with the banner.
func switchToAlice(t *testing.T, ctx context.Context, base, reason string, shot bool) {
	t.Helper()
	do(t, ctx, "opening alice's user page",
		chromedp.Navigate(base+"/admin/users/"+aliceID),
		chromedp.WaitVisible(chromedp.CSS(aliceButtonForm)),
	)
	label := runValue(t, ctx, "reading the button", chromedp.Text(chromedp.CSS(aliceButtonForm+` button[type="submit"]`)))
	if strings.TrimSpace(label) != "Log in as user" {
		t.Errorf("the button says %q, want %q", label, "Log in as user")
	}
	if shot {
		screenshot(t, ctx, "user-page.png")
	}
	do(t, ctx, "typing the reason",
		chromedp.SendKeys(chromedp.CSS(aliceButtonForm+` input[name="reason"]`), reason))
	click(t, ctx, "clicking Log in as user", aliceButtonForm+` button[type="submit"]`)
	do(t, ctx, "waiting for the banner", chromedp.WaitVisible(chromedp.CSS(banner)))
}

// TestBrowserLoginAsAndReturn walks the whole round trip an admin makes in a
// browser: sign in, switch to alice with a reason, see the app as alice,
// return, and find both events in the audit trail.
func TestBrowserLoginAsAndReturn(t *testing.T) {
	t.Parallel()
	a := startApp(t, "example", appConfig{})
	ctx := newBrowser(t)
	signIn(t, ctx, a.URL, "admin", "admin")

	const reason = "Ticket 4711: invoice list looks empty"
	switchToAlice(t, ctx, a.URL, reason, true)

	text := runValue(t, ctx, "reading the banner", chromedp.Text(chromedp.CSS(banner)))
	for _, want := range []string{"alice", "admin", "Return to my account"} {
		if !strings.Contains(text, want) {
			t.Errorf("the banner does not mention %q: %q", want, text)
		}
	}
	screenshot(t, ctx, "banner.png")

	landing := runValue(t, ctx, "reading the location", chromedp.Location())
	me := browserMe(t, ctx, a.URL)
	want := meInfo{Status: http.StatusOK, ID: aliceID, Username: "alice", IsImpersonated: true, Impersonator: "admin"}
	if me != want {
		t.Fatalf("/me while impersonating = %+v, want %+v", me, want)
	}
	do(t, ctx, "going back to "+landing,
		chromedp.Navigate(landing),
		chromedp.WaitVisible(chromedp.CSS(banner)),
	)

	returnButton := banner + ` button[type="submit"]`
	if label := runValue(t, ctx, "reading the return button", chromedp.Text(chromedp.CSS(returnButton))); strings.TrimSpace(label) != "Return to my account" {
		t.Errorf("the banner's button says %q, want %q", label, "Return to my account")
	}
	click(t, ctx, "clicking Return to my account", returnButton)
	if n := runValue(t, ctx, "looking for the banner", chromedp.Evaluate[int](`document.querySelectorAll(".loginas-banner").length`)); n != 0 {
		t.Errorf("after returning, the page still shows %d banner(s)\n%s", n, pageSummary(ctx))
	}
	me = browserMe(t, ctx, a.URL)
	want = meInfo{Status: http.StatusOK, ID: adminID, Username: "admin"}
	if me != want {
		t.Fatalf("/me after returning = %+v, want %+v", me, want)
	}

	do(t, ctx, "opening the audit trail",
		chromedp.Navigate(a.URL+"/admin/audit"),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
	rows := runValue(t, ctx, "reading the audit rows", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("tr")).map(r => r.innerText)`))
	events := []struct {
		name  string
		words []string
	}{
		{"start with the reason", []string{"start", "admin", "alice", reason}},
		{"end with cause logout", []string{"end", "admin", "alice", "logout"}},
	}
	for _, ev := range events {
		t.Run(ev.name, func(t *testing.T) {
			if !anyRowHasAll(rows, ev.words) {
				t.Errorf("no audit row has all of %q; rows:\n%s", ev.words, strings.Join(rows, "\n"))
			}
		})
	}
	screenshot(t, ctx, "audit.png")
}

func anyRowHasAll(rows, words []string) bool {
	for _, row := range rows {
		all := true
		for _, w := range words {
			if !strings.Contains(row, w) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// TestBrowserStaffSeesNoButton checks that the page of a user shows no
// "Log in as user" form to someone who may not impersonate.
func TestBrowserStaffSeesNoButton(t *testing.T) {
	t.Parallel()
	a := startApp(t, "example", appConfig{})
	ctx := newBrowser(t)
	signIn(t, ctx, a.URL, "staff", "staff")
	do(t, ctx, "opening alice's user page",
		chromedp.Navigate(a.URL+"/admin/users/"+aliceID),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
	text := bodyText(t, ctx)
	if !strings.Contains(text, "alice") {
		t.Fatalf("staff does not see alice's user page:\n%s", pageSummary(ctx))
	}
	checks := []struct {
		name, expr string
	}{
		{"no login-as form", `document.querySelectorAll('form[action^="/admin/loginas/"]:not([action="/admin/loginas/logout"])').length`},
		{"no loginas-button form", `document.querySelectorAll("form.loginas-button").length`},
		{"no reason field", `document.querySelectorAll('input[name="reason"]').length`},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if n := runValue(t, ctx, c.name, chromedp.Evaluate[int](c.expr)); n != 0 {
				t.Errorf("found %d, want 0\n%s", n, pageSummary(ctx))
			}
		})
	}
	if strings.Contains(text, "Log in as user") {
		t.Errorf("staff sees %q on alice's page", "Log in as user")
	}
}

// TestBrowserTimeLimit switches with a 3s limit, waits past it and reloads:
// the browser is signed out with a message, neither admin nor alice.
func TestBrowserTimeLimit(t *testing.T) {
	t.Parallel()
	const limit = 3 * time.Second
	a := startApp(t, "example", appConfig{MaxDuration: limit.String()})
	ctx := newBrowser(t)
	signIn(t, ctx, a.URL, "admin", "admin")
	switchToAlice(t, ctx, a.URL, "checking the time limit", false)
	landing := runValue(t, ctx, "reading the location", chromedp.Location())
	if me := browserMe(t, ctx, a.URL); me.Username != "alice" || !me.IsImpersonated {
		t.Fatalf("/me after switching = %+v, want alice impersonated", me)
	}
	do(t, ctx, "going back to "+landing,
		chromedp.Navigate(landing),
		chromedp.WaitVisible(chromedp.CSS(banner)),
	)

	// The deadline was set before the banner showed, so this waits past it.
	time.Sleep(limit + 500*time.Millisecond)
	do(t, ctx, "reloading", chromedp.Reload())

	text := bodyText(t, ctx)
	if !strings.Contains(text, "time limit") {
		t.Errorf("after the time limit the page gives no message about it:\n%s", pageSummary(ctx))
	}
	if n := runValue(t, ctx, "looking for the banner", chromedp.Evaluate[int](`document.querySelectorAll(".loginas-banner").length`)); n != 0 {
		t.Errorf("after the time limit the page still shows the banner")
	}
	me := browserMe(t, ctx, a.URL)
	want := meInfo{Status: http.StatusUnauthorized}
	if me != want {
		t.Errorf("/me after the time limit = %+v, want %+v (signed out)", me, want)
	}
}
