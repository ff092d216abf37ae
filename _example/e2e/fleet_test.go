package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFleetSharedRedis runs two instances, A and B, behind one redis-server
// with one secret and one database file, and one client whose cookies go to
// both (cookies are not port-specific). It shows that an impersonation
// started on A is seen on B and ended on B is seen on A, that each switch
// retires the old session, and what a Redis outage does.
func TestFleetSharedRedis(t *testing.T) {
	t.Parallel()
	redis := startRedis(t)
	cfg := appConfig{DB: filepath.Join(t.TempDir(), "shared.db"), Redis: redis.Addr}
	a := startApp(t, "instance A", cfg) // seeds the database
	b := startApp(t, "instance B", cfg)

	c := newClient(t)
	c.login(a.URL, "admin", "admin")
	admin := meInfo{Status: http.StatusOK, ID: adminID, Username: "admin"}
	if me := c.me(b.URL); me != admin {
		t.Fatalf("B does not share A's session: /me on B = %+v, want %+v", me, admin)
	}

	// A copy of the cookie works as long as its session lives.
	adminCookies := c.cookies(a.URL)
	if me := withCookies(t, a.URL, adminCookies).me(a.URL); me != admin {
		t.Fatalf("a copy of the signed-in cookie = %+v, want %+v", me, admin)
	}

	const reason = "fleet: switch on A"
	res := c.switchTo(a.URL, aliceID, reason)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("POST /admin/loginas/%s on A: status %d, want 303:\n%s", aliceID, res.Status, res.Body)
	}
	landing := res.Header.Get("Location")
	if !strings.HasPrefix(landing, "/") {
		t.Fatalf("the switch redirects to %q, want a local path", landing)
	}

	alice := meInfo{Status: http.StatusOK, ID: aliceID, Username: "alice", IsImpersonated: true, Impersonator: "admin"}
	for _, inst := range []*app{a, b} {
		if me := c.me(inst.URL); me != alice {
			t.Fatalf("after switching on A, /me on %s = %+v, want %+v", inst.name, me, alice)
		}
	}
	aliceCookies := c.cookies(a.URL)
	retired := func(t *testing.T, what string, cookies []*http.Cookie) {
		t.Helper()
		for _, inst := range []*app{a, b} {
			t.Run(what+" on "+inst.name, func(t *testing.T) {
				me := withCookies(t, inst.URL, cookies).me(inst.URL)
				if want := (meInfo{Status: http.StatusUnauthorized}); me != want {
					t.Errorf("replaying the cookie = %+v, want %+v", me, want)
				}
			})
		}
	}
	retired(t, "cookie from before the switch", adminCookies)

	// Return on B, from the page the switch led to.
	form := c.logoutForm(b.URL, landing)
	if text := form.HTML; !strings.Contains(text, "Return to my account") {
		t.Errorf("the logout form on %s does not offer %q: %s", landing, "Return to my account", text)
	}
	res = c.post(b.URL+"/admin/loginas/logout", form.Fields)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("POST /admin/loginas/logout on B: status %d, want 303:\n%s", res.Status, res.Body)
	}
	for _, inst := range []*app{a, b} {
		if me := c.me(inst.URL); me != admin {
			t.Fatalf("after returning on B, /me on %s = %+v, want %+v", inst.name, me, admin)
		}
	}
	retired(t, "cookie from before the return", aliceCookies)

	// Redis goes away. Every request that needs the session answers 5xx,
	// and nothing is switched.
	page := c.get(a.URL + "/admin/users/" + aliceID)
	switchForm, ok := formWithAction(page.Body, "/admin/loginas/"+aliceID)
	if !ok {
		t.Fatalf("alice's user page on A has no login-as form:\n%s", page.Body)
	}
	const outageReason = "fleet: switch while Redis is down"
	switchForm.Fields.Set("reason", outageReason)
	logout := c.logoutForm(a.URL, "/admin/")
	before := c.cookies(a.URL)

	redis.stop(t)
	jsonAccept := http.Header{"Accept": {"application/json"}}
	outage := []struct {
		name string
		json bool // the answer is JSON with an "error" text
		send func() (*response, error)
	}{
		{"GET /me on A", true, func() (*response, error) {
			return c.do(c.plain, http.MethodGet, a.URL+"/me", nil, jsonAccept)
		}},
		{"GET /me on B", false, func() (*response, error) { return c.do(c.plain, http.MethodGet, b.URL+"/me", nil, nil) }},
		{"GET /admin/users/4 on B", false, func() (*response, error) {
			return c.do(c.plain, http.MethodGet, b.URL+"/admin/users/"+aliceID, nil, nil)
		}},
		{"POST switch on A", false, func() (*response, error) {
			return c.do(c.plain, http.MethodPost, a.URL+"/admin/loginas/"+aliceID, switchForm.Fields, nil)
		}},
		{"POST switch on B", true, func() (*response, error) {
			return c.do(c.plain, http.MethodPost, b.URL+"/admin/loginas/"+aliceID, switchForm.Fields, jsonAccept)
		}},
		{"POST logout on B", false, func() (*response, error) {
			return c.do(c.plain, http.MethodPost, b.URL+"/admin/loginas/logout", logout.Fields, nil)
		}},
	}
	for _, o := range outage {
		t.Run("Redis down: "+o.name, func(t *testing.T) {
			res, err := o.send()
			if err != nil {
				t.Fatalf("no answer: %v", err)
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
			} else if strings.TrimSpace(res.Body) == "" {
				t.Errorf("status %d with an empty body, want a message", res.Status)
			}
			if loc := res.Header.Get("Location"); loc != "" {
				t.Errorf("redirects to %q during the outage", loc)
			}
		})
	}
	if after := c.cookies(a.URL); !sameCookies(before, after) {
		t.Errorf("the outage changed the client's cookies:\nbefore %v\nafter  %v", before, after)
	}

	// Redis comes back with its data: the same client on the same running
	// instances is admin again, never alice.
	redis.start(t)
	for _, inst := range []*app{a, b} {
		t.Run("Redis back: /me on "+inst.name, func(t *testing.T) {
			if me := c.me(inst.URL); me != admin {
				t.Errorf("/me = %+v, want %+v", me, admin)
			}
		})
	}
	// Writes work again too: a switch on B, seen on A, and back.
	if res := c.switchTo(b.URL, aliceID, "fleet: switch after the outage"); res.Status != http.StatusSeeOther {
		t.Fatalf("switching on B after the outage: status %d, want 303:\n%s", res.Status, tail(res.Body, 1000))
	}
	if me := c.me(a.URL); me != alice {
		t.Fatalf("after switching on B, /me on A = %+v, want %+v", me, alice)
	}
	form = c.logoutForm(a.URL, landing)
	if res := c.post(a.URL+"/admin/loginas/logout", form.Fields); res.Status != http.StatusSeeOther {
		t.Fatalf("returning on A after the outage: status %d, want 303:\n%s", res.Status, tail(res.Body, 1000))
	}
	if me := c.me(b.URL); me != admin {
		t.Fatalf("after returning on A, /me on B = %+v, want %+v", me, admin)
	}

	audit := c.get(a.URL + "/admin/audit")
	if audit.Status != http.StatusOK || !strings.Contains(audit.Body, reason) {
		t.Errorf("the audit trail (status %d) does not show the switch with reason %q", audit.Status, reason)
	}
	if strings.Contains(audit.Body, outageReason) {
		t.Errorf("the audit trail shows the switch attempted during the outage as if it happened")
	}
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
