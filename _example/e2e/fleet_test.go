package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-loginas/loginas/redisstore/redistest"
	"github.com/gin-loginas/loginas/sqlstore/pgtest"
)

// fleet is one test's instances and clients. Its steps are subtests named
// after what they show; a failed step stops the test, since the next ones
// build on it.
type fleet struct {
	t       *testing.T
	a, b    *app
	clients []*client
}

// step runs fn as a subtest; the fleet's clients report to it meanwhile.
func (f *fleet) step(name string, fn func(t *testing.T)) {
	parent := f.t
	parent.Helper()
	ok := parent.Run(name, func(t *testing.T) {
		for _, c := range f.clients {
			c.t = t
		}
		defer func() {
			for _, c := range f.clients {
				c.t = parent
			}
		}()
		fn(t)
	})
	if !ok {
		parent.FailNow()
	}
}

func (f *fleet) both() []*app { return []*app{f.a, f.b} }

// wantMe checks /me of c on both instances.
func (f *fleet) wantMe(t *testing.T, c *client, when string, want meInfo) {
	t.Helper()
	for _, inst := range f.both() {
		if me := c.me(inst.URL); me != want {
			t.Fatalf("%s, /me on %s = %+v, want %+v", when, inst.name, me, want)
		}
	}
}

// retired checks that a copy of cookies is signed out on both instances.
func (f *fleet) retired(t *testing.T, what string, cookies []*http.Cookie) {
	t.Helper()
	for _, inst := range f.both() {
		t.Run(what+" on "+inst.name, func(t *testing.T) {
			me := withCookies(t, inst.URL, cookies).me(inst.URL)
			if want := (meInfo{Status: http.StatusUnauthorized}); me != want {
				t.Errorf("replaying the cookie = %+v, want %+v", me, want)
			}
		})
	}
}

// mustSwitch switches c to user id on inst and returns the page it lands on.
func mustSwitch(t *testing.T, c *client, inst *app, id, reason string) string {
	t.Helper()
	res := c.switchTo(inst.URL, id, reason)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("POST /admin/loginas/%s on %s: status %d, want 303:\n%s", id, inst.name, res.Status, tail(res.Body, 2000))
	}
	landing := res.Header.Get("Location")
	if !strings.HasPrefix(landing, "/") || strings.HasPrefix(landing, "//") {
		t.Fatalf("the switch redirects to %q, want a local path", landing)
	}
	return landing
}

// mustReturn posts the banner's "Return to my account" on inst.
func mustReturn(t *testing.T, c *client, inst *app) {
	t.Helper()
	form := c.logoutForm(inst.URL, "/")
	if !strings.Contains(form.HTML, "Return to my account") {
		t.Fatalf("the logout form on %s does not offer %q: %s", inst.name, "Return to my account", form.HTML)
	}
	if res := c.post(inst.URL+"/admin/loginas/logout", form.Fields); res.Status != http.StatusSeeOther {
		t.Fatalf("POST /admin/loginas/logout on %s: status %d, want 303:\n%s", inst.name, res.Status, tail(res.Body, 2000))
	}
}

// postForm posts a form found on a page of inst and wants a 303.
func postForm(t *testing.T, c *client, inst *app, form htmlForm) {
	t.Helper()
	res := c.post(resolve(inst.URL, form.Action, ""), form.Fields)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("POST %s on %s: status %d, want 303:\n%s", form.Action, inst.name, res.Status, tail(res.Body, 2000))
	}
}

// signedOutWith checks that the next page c opens on inst says why its
// impersonation ended, shows no banner, and that c is then signed out on
// both instances.
func (f *fleet) signedOutWith(t *testing.T, c *client, inst *app, path, message string) {
	t.Helper()
	page := c.get(inst.URL + path)
	if !strings.Contains(page.Body, message) {
		t.Errorf("the next page on %s (status %d, %s) does not say %q:\n%s", inst.name, page.Status, page.URL, message, tail(textOf(page.Body), 1500))
	}
	if strings.Contains(page.Body, `class="loginas-banner"`) {
		t.Errorf("the next page on %s still shows the impersonation banner", inst.name)
	}
	f.wantMe(t, c, "after the end", meInfo{Status: http.StatusUnauthorized})
}

// livePage returns the rows of /admin/live on inst, as c sees it.
func livePage(t *testing.T, c *client, inst *app) []htmlRow {
	t.Helper()
	page := c.get(inst.URL + "/admin/live")
	if page.Status != http.StatusOK {
		t.Fatalf("GET /admin/live on %s: status %d:\n%s", inst.name, page.Status, tail(page.Body, 1000))
	}
	return tableRows(page.Body)
}

// auditRows returns the rows of the audit trail's first page on inst.
func auditRows(t *testing.T, c *client, inst *app) []string {
	t.Helper()
	page := c.get(inst.URL + "/admin/audit")
	if page.Status != http.StatusOK {
		t.Fatalf("GET /admin/audit on %s: status %d:\n%s", inst.name, page.Status, tail(page.Body, 1000))
	}
	var rows []string
	for _, r := range tableRows(page.Body) {
		rows = append(rows, r.Text)
	}
	return rows
}

// auditCells returns the events of the audit trail's first page on inst,
// each as its cells by column heading.
func auditCells(t *testing.T, c *client, inst *app) []map[string]string {
	t.Helper()
	page := c.get(inst.URL + "/admin/audit")
	if page.Status != http.StatusOK {
		t.Fatalf("GET /admin/audit on %s: status %d:\n%s", inst.name, page.Status, tail(page.Body, 1000))
	}
	var heads []string
	for _, m := range thRe.FindAllStringSubmatch(page.Body, -1) {
		heads = append(heads, textOf(m[1]))
	}
	var events []map[string]string
	for _, m := range rowRe.FindAllStringSubmatch(page.Body, -1) {
		cells := tdRe.FindAllStringSubmatch(m[1], -1)
		if len(cells) == 0 {
			continue
		}
		if len(cells) != len(heads) {
			t.Fatalf("an audit row has %d cells under %d headings %q: %s", len(cells), len(heads), heads, textOf(m[1]))
		}
		e := map[string]string{}
		for i, cell := range cells {
			e[heads[i]] = textOf(cell[1])
		}
		events = append(events, e)
	}
	return events
}

var (
	thRe = regexp.MustCompile(`(?is)<th\b[^>]*>(.*?)</th>`)
	tdRe = regexp.MustCompile(`(?is)<td\b[^>]*>(.*?)</td>`)
)

// missingRows returns the rows of before that after does not have, each
// row counted as often as it occurs.
func missingRows(before, after []string) []string {
	left := slices.Clone(after)
	var missing []string
	for _, r := range before {
		if i := slices.Index(left, r); i >= 0 {
			left = slices.Delete(left, i, i+1)
		} else {
			missing = append(missing, r)
		}
	}
	return missing
}

// outageRequest is a request sent while a server is down.
type outageRequest struct {
	name string
	json bool // the answer is JSON with an "error" text
	send func() (*response, error)
}

// checkOutage sends each request and wants a quick 5xx that says what is
// unavailable, and no redirect. It logs the statuses.
func checkOutage(t *testing.T, what string, reqs []outageRequest) {
	t.Helper()
	statuses := map[string]int{}
	for _, o := range reqs {
		t.Run(what+": "+o.name, func(t *testing.T) {
			start := time.Now()
			res, err := o.send()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			statuses[o.name] = res.Status
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the answer took %s; a server that is down must fail fast", d.Round(time.Millisecond))
			}
			if res.Status < 500 || res.Status > 599 {
				t.Errorf("status %d, want 5xx:\n%s", res.Status, tail(res.Body, 1000))
			}
			if o.json {
				var body struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal([]byte(res.Body), &body); err != nil || body.Error == "" {
					t.Errorf("status %d, body %q: want JSON with an error text", res.Status, tail(res.Body, 500))
				}
			}
			if !strings.Contains(res.Body, "unavailable") {
				t.Errorf("status %d, the answer does not say what is unavailable:\n%s", res.Status, tail(textOf(res.Body), 1000))
			}
			if loc := res.Header.Get("Location"); loc != "" {
				t.Errorf("redirects to %q during the outage", loc)
			}
		})
	}
	t.Logf("%s: statuses %v", what, statuses)
}

var jsonAccept = http.Header{"Accept": {"application/json"}}

// TestFleetOnPostgresAndRedis runs two instances, A and B, with one secret,
// one PostgreSQL database (users, history, notices, consents, audit trail)
// and one Redis (sessions and the plugin's Store), and clients whose
// cookies go to both (cookies are not port-specific). It shows that what
// happens on one instance holds on the other: switches, each kind of end,
// the live list and the end notice; that old cookies are dead everywhere;
// and that an outage of PostgreSQL or of Redis answers 5xx, changes
// nothing half-way, loses nothing, and heals without a restart.
func TestFleetOnPostgresAndRedis(t *testing.T) {
	t.Parallel()
	began := time.Now()
	pg := pgtest.Start(t)
	redis := redistest.Start(t)
	cfg := appConfig{Database: pg.URL, Redis: redis.Addr}
	// One after the other: A makes the tables and seeds the users. (Two
	// instances migrating an empty PostgreSQL database at once can fail,
	// since the app's own CREATE TABLEs take no lock.)
	a := startApp(t, "instance A", cfg)
	b := startApp(t, "instance B", cfg)
	adm, rt, al := newClient(t), newClient(t), newClient(t) // admin, root, alice
	f := &fleet{t: t, a: a, b: b, clients: []*client{adm, rt, al}}
	t.Logf("servers and instances up after %s", time.Since(began).Round(time.Millisecond))

	admin := meInfo{Status: http.StatusOK, ID: adminID, Username: "admin"}
	root := meInfo{Status: http.StatusOK, ID: rootID, Username: "root"}
	adminAsAlice := meInfo{Status: http.StatusOK, ID: aliceID, Username: "alice", IsImpersonated: true, Impersonator: "admin"}
	adminAsBob := meInfo{Status: http.StatusOK, ID: bobID, Username: "bob", IsImpersonated: true, Impersonator: "admin"}
	rootAsAlice := meInfo{Status: http.StatusOK, ID: aliceID, Username: "alice", IsImpersonated: true, Impersonator: "root"}
	const (
		reasonReturn   = "fleet: switch on A, return on A"
		reasonEndAll   = "fleet: ended by EndAll on A"
		reasonLiveEnd  = "fleet: ended from the live list on B"
		reasonPerson   = "fleet: ended by alice on B"
		reasonKept     = "fleet: kept through both outages"
		reasonAfterPG  = "fleet: switch after the PostgreSQL outage"
		reasonAfterRed = "fleet: switch after the Redis outage"
		reasonPGDown   = "fleet: switch while PostgreSQL is down"
		reasonRedDown  = "fleet: switch while Redis is down"
	)

	adm.login(a.URL, "admin", "admin")
	rt.login(b.URL, "root", "root")
	al.login(b.URL, "alice", "alice") // alice opens no page until the notice

	var landing string
	f.step("a switch on A is seen on B and retires the old session", func(t *testing.T) {
		f.wantMe(t, adm, "signed in on A", admin)
		adminCookies := adm.cookies(a.URL)
		if me := withCookies(t, a.URL, adminCookies).me(b.URL); me != admin {
			t.Fatalf("a copy of the signed-in cookie on B = %+v, want %+v", me, admin)
		}
		landing = mustSwitch(t, adm, a, aliceID, reasonReturn)
		f.wantMe(t, adm, "after switching on A", adminAsAlice)
		f.retired(t, "cookie from before the switch", adminCookies)
	})

	f.step("text PostgreSQL refuses (invalid UTF-8, NUL) answers 4xx, never 5xx", func(t *testing.T) {
		anon := newClient(t)
		for _, name := range []string{"\xff", "a\x00b"} {
			if r := anon.post(a.URL+"/login", url.Values{"username": {name}, "password": {"x"}}); r.Status < 400 || r.Status > 499 {
				t.Errorf("POST /login with username %q: status %d, want 4xx", name, r.Status)
			}
		}
		for _, q := range []string{"\xff", "x\x00", strings.Repeat("a", 149) + "é"} {
			if r := rt.get(b.URL + "/admin/users?q=" + url.QueryEscape(q)); r.Status != http.StatusOK {
				t.Errorf("GET /admin/users?q=%q: status %d, want 200", q, r.Status)
			}
		}
	})

	f.step("the live list on B shows an impersonation started on A", func(t *testing.T) {
		row, ok := rowWith(livePage(t, rt, b), "admin", "alice", reasonReturn)
		if !ok {
			t.Fatalf("root's /admin/live on B has no row for admin as alice with reason %q", reasonReturn)
		}
		if _, ok := findFormIn(row.Forms, "loginas-end"); !ok {
			t.Errorf("the row %q has no End button", row.Text)
		}
	})

	f.step("the return on A ends the impersonation on B too", func(t *testing.T) {
		aliceCookies := adm.cookies(a.URL)
		page := adm.get(b.URL + landing)
		if !strings.Contains(page.Body, `class="loginas-banner"`) {
			t.Errorf("B shows no banner on %s while impersonating", landing)
		}
		mustReturn(t, adm, a)
		f.wantMe(t, adm, "after returning on A", admin)
		f.retired(t, "copy of the impersonated cookie after the return", aliceCookies)
		if _, ok := rowWith(livePage(t, rt, b), reasonReturn); ok {
			t.Errorf("root's /admin/live on B still lists the impersonation that ended on A")
		}
	})

	f.step("the end notice is shown once across instances", func(t *testing.T) {
		page := al.get(a.URL + "/")
		notices := blocks(page.Body, "loginas-notice")
		if len(notices) != 1 || !hasAll(notices[0].Text, "admin used your account.", reasonReturn) {
			t.Fatalf("alice's next page on A shows the notices %+v, want one saying %q with the reason", notices, "admin used your account.")
		}
		for _, inst := range f.both() {
			if n := blocks(al.get(inst.URL+"/").Body, "loginas-notice"); len(n) != 0 {
				t.Errorf("alice's page after that on %s shows the notice again: %+v", inst.name, n)
			}
		}
	})

	f.step("EndAll on A signs out the impersonation served by B", func(t *testing.T) {
		mustSwitch(t, adm, a, bobID, reasonEndAll)
		if me := adm.me(b.URL); me != adminAsBob {
			t.Fatalf("after switching on A, /me on B = %+v, want %+v", me, adminAsBob)
		}
		page := rt.get(a.URL + "/admin/users/" + adminID)
		form, ok := formWithAction(page.Body, "/admin/users/"+adminID+"/end-impersonations")
		if !ok {
			t.Fatalf("root's page of admin on A has no End all impersonations form:\n%s", tail(page.Body, 2000))
		}
		postForm(t, rt, a, form)
		f.signedOutWith(t, adm, b, "/", "was ended by an administrator")
	})

	f.step("End from the live list on B signs out an impersonation started on A", func(t *testing.T) {
		adm.login(a.URL, "admin", "admin")
		mustSwitch(t, adm, a, aliceID, reasonLiveEnd)
		row, ok := rowWith(livePage(t, rt, b), "admin", "alice", reasonLiveEnd)
		if !ok {
			t.Fatalf("root's /admin/live on B has no row with reason %q", reasonLiveEnd)
		}
		form, ok := findFormIn(row.Forms, "loginas-end")
		if !ok || form.Fields.Get("impersonation") == "" {
			t.Fatalf("the live row %q has no End form with an impersonation", row.Text)
		}
		postForm(t, rt, b, form)
		f.signedOutWith(t, adm, a, "/", "was ended by an administrator")
	})

	f.step("the person's End access on B signs out an impersonation started on A", func(t *testing.T) {
		adm.login(a.URL, "admin", "admin")
		landing = mustSwitch(t, adm, a, aliceID, reasonPerson)
		page := al.get(b.URL + "/")
		inUse := blocks(page.Body, "loginas-in-use")
		if len(inUse) != 1 || !hasAll(strings.ToLower(inUse[0].Text), "admin is signed in to your account right now.") || !strings.Contains(inUse[0].Text, reasonPerson) {
			t.Fatalf("alice's page on B shows %+v, want her account in use by admin with the reason", inUse)
		}
		form, ok := findFormIn(inUse[0].Forms, "loginas-end")
		if !ok || form.Fields.Get("impersonation") == "" || !strings.Contains(form.HTML, "End access") {
			t.Fatalf("alice's in-use notice has no End access form with an impersonation: %+v", inUse[0].Forms)
		}
		postForm(t, al, b, form)
		if n := blocks(al.get(b.URL+"/").Body, "loginas-in-use"); len(n) != 0 {
			t.Errorf("after End access, alice's page still shows her account in use: %+v", n)
		}
		f.signedOutWith(t, adm, a, landing, "alice ended your access to their account")
	})

	var auditBefore []string
	f.step("PostgreSQL down: the database's requests answer 5xx and change nothing", func(t *testing.T) {
		adm.login(a.URL, "admin", "admin")
		mustSwitch(t, adm, a, bobID, reasonKept) // lives through both outages
		f.wantMe(t, rt, "before the outage", root)
		auditBefore = auditRows(t, rt, a)
		page := rt.get(a.URL + "/admin/users/" + aliceID)
		switchForm, ok := formWithAction(page.Body, "/admin/loginas/"+aliceID)
		if !ok {
			t.Fatalf("alice's user page on A has no login-as form:\n%s", tail(page.Body, 2000))
		}
		switchForm.Fields.Set("reason", reasonPGDown)
		returnForm := adm.logoutForm(b.URL, "/")
		rtBefore, admBefore := rt.cookies(a.URL), adm.cookies(a.URL)

		pg.Stop(t)
		checkOutage(t, "PostgreSQL down", []outageRequest{
			{"root: GET /me on A", true, func() (*response, error) {
				return rt.do(rt.plain, http.MethodGet, a.URL+"/me", nil, jsonAccept)
			}},
			{"root: GET /admin/users/4 on B", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodGet, b.URL+"/admin/users/"+aliceID, nil, nil)
			}},
			{"root: GET /admin/audit on A", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodGet, a.URL+"/admin/audit", nil, nil)
			}},
			{"root: POST switch on A", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodPost, a.URL+"/admin/loginas/"+aliceID, switchForm.Fields, nil)
			}},
			{"root: POST switch on B", true, func() (*response, error) {
				return rt.do(rt.plain, http.MethodPost, b.URL+"/admin/loginas/"+aliceID, switchForm.Fields, jsonAccept)
			}},
			{"admin as bob: GET / on A", false, func() (*response, error) {
				return adm.do(adm.plain, http.MethodGet, a.URL+"/", nil, nil)
			}},
			{"admin as bob: POST return on B", false, func() (*response, error) {
				return adm.do(adm.plain, http.MethodPost, b.URL+"/admin/loginas/logout", returnForm.Fields, nil)
			}},
		})
		if !sameCookies(rtBefore, rt.cookies(a.URL)) || !sameCookies(admBefore, adm.cookies(a.URL)) {
			t.Errorf("the outage changed a client's cookies")
		}
	})

	f.step("PostgreSQL back: the same instances recover, lose nothing and switch again", func(t *testing.T) {
		pg.Start(t)
		f.wantMe(t, rt, "after PostgreSQL came back", root)
		f.wantMe(t, adm, "after PostgreSQL came back", adminAsBob)
		mustSwitch(t, rt, a, aliceID, reasonAfterPG)
		if me := rt.me(b.URL); me != rootAsAlice {
			t.Fatalf("after switching on A, /me on B = %+v, want %+v", me, rootAsAlice)
		}
		mustReturn(t, rt, b)
		f.wantMe(t, rt, "after returning on B", root)
		after := auditRows(t, rt, b)
		if lost := missingRows(auditBefore, after); len(lost) > 0 {
			t.Errorf("the audit trail lost %d of %d events over the outage:\n%s", len(lost), len(auditBefore), strings.Join(lost, "\n"))
		}
		if _, ok := rowWith(rowsOfText(after), "start", reasonAfterPG); !ok {
			t.Errorf("the audit trail has no start with reason %q", reasonAfterPG)
		}
		if _, ok := rowWith(rowsOfText(after), reasonPGDown); ok {
			t.Errorf("the audit trail shows the switch attempted during the outage")
		}
	})

	f.step("Redis down: every request that needs a session answers 5xx and changes nothing", func(t *testing.T) {
		auditBefore = auditRows(t, rt, a)
		page := rt.get(a.URL + "/admin/users/" + aliceID)
		switchForm, ok := formWithAction(page.Body, "/admin/loginas/"+aliceID)
		if !ok {
			t.Fatalf("alice's user page on A has no login-as form:\n%s", tail(page.Body, 2000))
		}
		switchForm.Fields.Set("reason", reasonRedDown)
		logout := rt.logoutForm(a.URL, "/admin/")
		returnForm := adm.logoutForm(a.URL, "/")
		rtBefore, admBefore := rt.cookies(a.URL), adm.cookies(a.URL)

		redis.Stop(t)
		checkOutage(t, "Redis down", []outageRequest{
			{"root: GET /me on A", true, func() (*response, error) {
				return rt.do(rt.plain, http.MethodGet, a.URL+"/me", nil, jsonAccept)
			}},
			{"root: GET /me on B", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodGet, b.URL+"/me", nil, nil)
			}},
			{"root: GET /admin/users/4 on B", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodGet, b.URL+"/admin/users/"+aliceID, nil, nil)
			}},
			{"root: POST switch on A", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodPost, a.URL+"/admin/loginas/"+aliceID, switchForm.Fields, nil)
			}},
			{"root: POST switch on B", true, func() (*response, error) {
				return rt.do(rt.plain, http.MethodPost, b.URL+"/admin/loginas/"+aliceID, switchForm.Fields, jsonAccept)
			}},
			{"root: POST logout on B", false, func() (*response, error) {
				return rt.do(rt.plain, http.MethodPost, b.URL+"/admin/loginas/logout", logout.Fields, nil)
			}},
			{"admin as bob: GET / on B", false, func() (*response, error) {
				return adm.do(adm.plain, http.MethodGet, b.URL+"/", nil, nil)
			}},
			{"admin as bob: POST return on A", false, func() (*response, error) {
				return adm.do(adm.plain, http.MethodPost, a.URL+"/admin/loginas/logout", returnForm.Fields, nil)
			}},
		})
		if !sameCookies(rtBefore, rt.cookies(a.URL)) || !sameCookies(admBefore, adm.cookies(a.URL)) {
			t.Errorf("the outage changed a client's cookies")
		}
	})

	f.step("Redis back: sessions and the live impersonation survive, switches work again", func(t *testing.T) {
		redis.Start(t)
		f.wantMe(t, rt, "after Redis came back", root)
		f.wantMe(t, adm, "after Redis came back", adminAsBob)
		mustSwitch(t, rt, b, aliceID, reasonAfterRed)
		if me := rt.me(a.URL); me != rootAsAlice {
			t.Fatalf("after switching on B, /me on A = %+v, want %+v", me, rootAsAlice)
		}
		mustReturn(t, rt, a)
		f.wantMe(t, rt, "after returning on A", root)
		mustReturn(t, adm, b)
		f.wantMe(t, adm, "after admin returned on B", admin)
	})

	f.step("the audit trail holds every event once, on both instances", func(t *testing.T) {
		type ev struct{ action, cause, actor, target, reason string }
		want := map[ev]int{
			{"start", "", "admin", "alice", reasonReturn}:    1,
			{"start", "", "admin", "bob", reasonEndAll}:      1,
			{"start", "", "admin", "alice", reasonLiveEnd}:   1,
			{"start", "", "admin", "alice", reasonPerson}:    1,
			{"start", "", "admin", "bob", reasonKept}:        1,
			{"start", "", "root", "alice", reasonAfterPG}:    1,
			{"start", "", "root", "alice", reasonAfterRed}:   1,
			{"end", "logout", "admin", "alice", ""}:          1,
			{"end", "ended", "admin", "bob", ""}:             1,
			{"end", "ended_by_admin", "admin", "alice", ""}:  1,
			{"end", "ended_by_target", "admin", "alice", ""}: 1,
			{"end", "logout", "admin", "bob", ""}:            1,
			{"end", "logout", "root", "alice", ""}:           2,
		}
		for _, inst := range f.both() {
			rows := auditRows(t, rt, inst)
			if lost := missingRows(auditBefore, rows); len(lost) > 0 {
				t.Errorf("on %s, the audit trail lost %d events over the Redis outage:\n%s", inst.name, len(lost), strings.Join(lost, "\n"))
			}
			got := map[ev]int{}
			for _, c := range auditCells(t, rt, inst) {
				got[ev{c["Action"], c["Cause"], c["Actor"], c["Target"], c["Reason"]}]++
			}
			for e, n := range want {
				if got[e] != n {
					t.Errorf("on %s, the audit trail has %d events %+v, want %d", inst.name, got[e], e, n)
				}
			}
			if len(got) != len(want) {
				t.Errorf("on %s, the audit trail has other events than those made:\n%s", inst.name, strings.Join(rows, "\n"))
			}
		}
	})
	t.Logf("the fleet test took %s", time.Since(began).Round(time.Millisecond))
}

// rowsOfText wraps row texts for rowWith.
func rowsOfText(texts []string) []htmlRow {
	rows := make([]htmlRow, len(texts))
	for i, s := range texts {
		rows[i] = htmlRow{Text: s}
	}
	return rows
}

// findFormIn returns the first form of the given class.
func findFormIn(forms []htmlForm, class string) (htmlForm, bool) {
	for _, f := range forms {
		if slices.Contains(strings.Fields(f.Class), class) {
			return f, true
		}
	}
	return htmlForm{}, false
}

func sameCookies(x, y []*http.Cookie) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i].Name != y[i].Name || x[i].Value != y[i].Value {
			return false
		}
	}
	return true
}

// TestUnreachableRedis starts the example with a -redis address where no
// server listens. The example checks the connection at start-up, so it must
// exit with a non-zero status and a message naming Redis and the address,
// rather than start and fail each request.
func TestUnreachableRedis(t *testing.T) {
	t.Parallel()
	bin := exampleBinary(t)
	redisAddr := "127.0.0.1:" + strconv.Itoa(freePort(t)) // closed again: nobody listens
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := appConfig{Redis: redisAddr}
	p := startProc(t, "example with unreachable Redis", bin, cfg.args(t, addr)...)
	t.Cleanup(func() { p.stop(t) })

	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		res, err := http.Get((&url.URL{Scheme: "http", Host: addr, Path: "/login"}).String())
		if err == nil {
			res.Body.Close()
			t.Fatalf("still running after 30s, GET /login answers %s; want an exit at start-up", res.Status)
		}
		t.Fatalf("still running after 30s (GET /login: %v); want an exit at start-up", err)
	}
	out := p.out.String()
	if p.err == nil {
		t.Errorf("exited with status 0, want non-zero; output:\n%s", out)
	}
	for _, want := range []string{"redis", redisAddr} {
		if !strings.Contains(strings.ToLower(out), strings.ToLower(want)) {
			t.Errorf("the output does not mention %q:\n%s", want, out)
		}
	}
}
