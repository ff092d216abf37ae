package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Selectors of the person's side: the banner partial's parts for the
// person whose account is used, the access page and the live list.
const (
	inUse          = `.loginas-in-use`
	endAccessBtn   = `.loginas-in-use form.loginas-end button[type="submit"]`
	notice         = `.loginas-notice`
	accessRows     = `.loginas-access tbody tr`
	liveRows       = `.loginas-live tbody tr`
	consentSection = `.loginas-consent`
	grantSelect    = `.loginas-consent select[name="duration"]`
	grantBtn       = `.loginas-consent form:has(select[name="duration"]) button[type="submit"]`
	withdrawBtn    = `.loginas-consent form:has(input[name="withdraw"]) button[type="submit"]`
)

// count returns how many elements on the page match selector.
func count(t *testing.T, ctx context.Context, selector string) int {
	t.Helper()
	return runValue(t, ctx, "counting "+selector, chromedp.Evaluate[int](
		`document.querySelectorAll(`+jsString(selector)+`).length`))
}

// texts returns the visible text of each element matching selector.
func texts(t *testing.T, ctx context.Context, selector string) []string {
	t.Helper()
	return runValue(t, ctx, "reading "+selector, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(`+jsString(selector)+`)).map(e => e.innerText)`))
}

// jsString quotes s as a JavaScript string literal (s has no quote of the
// other kind or backslash).
func jsString(s string) string {
	if strings.Contains(s, "'") {
		return `"` + s + `"`
	}
	return `'` + s + `'`
}

// open navigates to a page and waits for its body.
func open(t *testing.T, ctx context.Context, rawURL string) {
	t.Helper()
	do(t, ctx, "opening "+rawURL, chromedp.Navigate(rawURL), chromedp.WaitReady(chromedp.CSS("body")))
}

// returnToOwnAccount clicks the banner's "Return to my account".
func returnToOwnAccount(t *testing.T, ctx context.Context) {
	t.Helper()
	click(t, ctx, "clicking Return to my account", banner+` button[type="submit"]`)
	if n := count(t, ctx, banner); n != 0 {
		t.Fatalf("after returning, the page still shows the banner\n%s", pageSummary(ctx))
	}
}

// wantSignedOut checks that the page the browser is on says message and
// shows no banner, and that /me is anonymous.
func wantSignedOut(t *testing.T, ctx context.Context, base, message string) {
	t.Helper()
	if text := bodyText(t, ctx); !strings.Contains(text, message) {
		t.Errorf("the page does not say %q:\n%s", message, pageSummary(ctx))
	}
	if n := count(t, ctx, banner); n != 0 {
		t.Errorf("the page still shows the impersonation banner\n%s", pageSummary(ctx))
	}
	if me := browserMe(t, ctx, base); me != (meInfo{Status: http.StatusUnauthorized}) {
		t.Errorf("/me = %+v, want signed out", me)
	}
}

// TestBrowserEndNoticeIsShownOnce: after admin returned from alice's
// account, alice's next page shows "admin used your account." with the
// reason, and the page after that does not. Her Account access page then
// lists both impersonations with their reasons.
func TestBrowserEndNoticeIsShownOnce(t *testing.T) {
	t.Parallel()
	a := startApp(t, "example", appConfig{})
	admin := newBrowser(t)
	alice := newPerson(t, admin)
	signIn(t, alice, a.URL, "alice", "alice")
	signIn(t, admin, a.URL, "admin", "admin")

	const first, second = "Ticket 4713: the export button does nothing", "Ticket 4720: checking the fixed export"
	switchToAlice(t, admin, a.URL, first, false)
	returnToOwnAccount(t, admin)

	open(t, alice, a.URL+"/")
	notices := texts(t, alice, notice)
	if len(notices) != 1 || !hasAll(notices[0], "admin used your account.", first) {
		t.Fatalf("alice's next page shows the notices %q, want one saying %q with the reason\n%s",
			notices, "admin used your account.", pageSummary(alice))
	}
	open(t, alice, a.URL+"/profile")
	if n := count(t, alice, notice); n != 0 {
		t.Errorf("the page after that shows the notice again (%d)\n%s", n, pageSummary(alice))
	}

	switchToAlice(t, admin, a.URL, second, false)
	returnToOwnAccount(t, admin)
	open(t, alice, a.URL+"/access") // shows the second notice, once
	if n := count(t, alice, notice); n != 1 {
		t.Errorf("alice's next page shows %d notices, want 1\n%s", n, pageSummary(alice))
	}
	open(t, alice, a.URL+"/access")
	if n := count(t, alice, notice); n != 0 {
		t.Errorf("the page after that shows %d notices, want none", n)
	}
	rows := texts(t, alice, accessRows)
	for _, reason := range []string{first, second} {
		if !anyRowHasAll(rows, []string{"admin", reason, "they returned to their own account"}) {
			t.Errorf("alice's Account access page has no row for %q; rows:\n%s", reason, strings.Join(rows, "\n"))
		}
	}
	screenshot(t, alice, "access.png")
}

// TestBrowserPersonEndsAccess: while admin is signed in to alice's account,
// root's live list shows it, and alice, signed in as herself in another
// browser, sees "admin is signed in to your account right now." on her
// page and presses End access. Admin's next page then says that alice
// ended it, and admin is signed out.
func TestBrowserPersonEndsAccess(t *testing.T) {
	t.Parallel()
	a := startApp(t, "example", appConfig{})
	admin := newBrowser(t)
	alice, root := newPerson(t, admin), newPerson(t, admin)
	signIn(t, alice, a.URL, "alice", "alice")
	signIn(t, root, a.URL, "root", "root")
	signIn(t, admin, a.URL, "admin", "admin")

	const reason = "Ticket 4714: alice cannot see her invoices"
	switchToAlice(t, admin, a.URL, reason, false)
	landing := runValue(t, admin, "reading the location", chromedp.Location())

	open(t, root, a.URL+"/admin/live")
	live := texts(t, root, liveRows)
	if len(live) != 1 || !hasAll(live[0], "admin", "alice", reason) {
		t.Errorf("root's live list shows %q, want one row of admin as alice with the reason", live)
	}
	if n := count(t, root, liveRows+` form.loginas-end button`); n != 1 {
		t.Errorf("root's live list has %d End buttons, want 1", n)
	}
	screenshot(t, root, "live.png")

	open(t, alice, a.URL+"/")
	shown := texts(t, alice, inUse)
	if len(shown) != 1 || !strings.Contains(strings.ToLower(shown[0]), "admin is signed in to your account right now.") || !strings.Contains(shown[0], reason) {
		t.Fatalf("alice's page shows %q, want her account in use by admin with the reason\n%s", shown, pageSummary(alice))
	}
	label := runValue(t, alice, "reading the End access button", chromedp.Text(chromedp.CSS(endAccessBtn)))
	if strings.TrimSpace(label) != "End access" {
		t.Errorf("the button says %q, want %q", label, "End access")
	}
	screenshot(t, alice, "in-use.png")
	click(t, alice, "clicking End access", endAccessBtn)
	if text := bodyText(t, alice); !strings.Contains(text, "admin is no longer signed in as alice.") {
		t.Errorf("after End access, alice's page does not confirm it:\n%s", pageSummary(alice))
	}
	if n := count(t, alice, inUse); n != 0 {
		t.Errorf("after End access, alice's page still shows her account in use")
	}

	open(t, admin, landing)
	wantSignedOut(t, admin, a.URL, "alice ended your access to their account")

	open(t, root, a.URL+"/admin/live")
	if n := count(t, root, liveRows); n != 0 {
		t.Errorf("root's live list still has %d rows", n)
	}
}

// TestBrowserConsentGrantedUsedAndWithdrawn runs the example with
// -require-consent: admin gets no button for alice until alice allows
// access for an hour on her Account access page; then the switch works;
// when alice withdraws, admin's next page is signed out with a message
// that says so.
func TestBrowserConsentGrantedUsedAndWithdrawn(t *testing.T) {
	t.Parallel()
	a := startApp(t, "example", appConfig{Extra: []string{"-require-consent"}})
	admin := newBrowser(t)
	alice := newPerson(t, admin)
	signIn(t, alice, a.URL, "alice", "alice")
	signIn(t, admin, a.URL, "admin", "admin")

	open(t, admin, a.URL+"/admin/users/"+aliceID)
	if n := count(t, admin, aliceButtonForm); n != 0 {
		t.Errorf("admin sees a login-as form for alice before she allowed access")
	}
	if text := bodyText(t, admin); !strings.Contains(text, "This user has not allowed access to their account.") {
		t.Errorf("alice's user page does not say why there is no button:\n%s", pageSummary(admin))
	}

	open(t, alice, a.URL+"/access")
	if text := runValue(t, alice, "reading the consent form", chromedp.Text(chromedp.CSS(consentSection))); !strings.Contains(text, "Support cannot sign in to your account.") {
		t.Errorf("the consent form says %q, want that support cannot sign in", text)
	}
	if n := count(t, alice, withdrawBtn); n != 0 {
		t.Errorf("the consent form offers to withdraw a consent that was never given")
	}
	do(t, alice, "choosing 1 hour", chromedp.SetValue(chromedp.CSS(grantSelect), "1h0m0s"))
	click(t, alice, "allowing access", grantBtn)
	if text := bodyText(t, alice); !strings.Contains(text, "Support may sign in to your account until") {
		t.Errorf("after allowing access, the page does not say until when:\n%s", pageSummary(alice))
	}

	const reason = "Ticket 4715: alice asked for help with her settings"
	switchToAlice(t, admin, a.URL, reason, false)
	landing := runValue(t, admin, "reading the location", chromedp.Location())
	if me := browserMe(t, admin, a.URL); me.Username != "alice" || me.Impersonator != "admin" {
		t.Fatalf("/me after the switch = %+v, want admin as alice", me)
	}

	open(t, alice, a.URL+"/access")
	if n := count(t, alice, inUse); n != 1 {
		t.Errorf("alice's Account access page shows %d in-use notices, want 1", n)
	}
	click(t, alice, "withdrawing access", withdrawBtn)
	if text := bodyText(t, alice); !strings.Contains(text, "Support can no longer sign in to your account.") {
		t.Errorf("after withdrawing, the page does not confirm it:\n%s", pageSummary(alice))
	}
	if n := count(t, alice, inUse); n != 0 {
		t.Errorf("after withdrawing, alice's page still shows her account in use")
	}

	open(t, admin, landing)
	wantSignedOut(t, admin, a.URL, "alice withdrew their consent")
}
