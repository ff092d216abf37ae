package loginas_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// fuzzRig holds one in-process app per store kind for a fuzz target. The
// harness's clock stands still, so no record expires between iterations.
// The apps are replaced every fuzzRigUses iterations: the memstore and the
// memory of ended impersonations only grow under a clock that stands still.
type fuzzRig struct {
	apps []*testApp
	uses int
}

const fuzzRigUses = 2000

func (r *fuzzRig) app(tb testing.TB, store uint8) *testApp {
	if r.apps == nil || r.uses >= fuzzRigUses {
		r.apps, r.uses = nil, 0
		for _, st := range sessionStores {
			r.apps = append(r.apps, buildApp(tb, st))
		}
	}
	r.uses++
	return r.apps[int(store)%len(r.apps)]
}

// fuzzSession returns the Cookie header of a settled session of the admin,
// logged in as alice if impersonating, and a token for it.
func fuzzSession(t *testing.T, a *testApp, impersonating bool) (cookie, token string) {
	t.Helper()
	c := a.clientFor(t)
	c.signIn("admin")
	if impersonating {
		r := c.switchTo("alice", nil)
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
	}
	token = c.page().Token
	return cookieHeader(c.cookies()), token
}

// fuzzHeaderValue reports whether v could reach a handler as a header
// value: servers refuse requests with control characters in a header.
func fuzzHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// fuzzRoute feeds one of the plugin's routes whole requests built from the
// fuzzer's input: any method, path, the headers that the cross-origin,
// CSRF, content negotiation and refusal logic read, cookies (none, valid,
// mutated valid, random) and any body. No input may make the route panic
// or answer 5xx, and a request without the session's token never turns
// the session into another user's.
func fuzzRoute(f *testing.F, route string) {
	rig := &fuzzRig{}
	seeds := []struct {
		store                                            uint8
		method, id, origin, site, referer, accept, ctype string
		cookieMode                                       uint8
		cookieData                                       string
		tokenMode                                        uint8
		body                                             string
	}{
		{0, "POST", "alice", "", "same-origin", "", "text/html", "application/x-www-form-urlencoded", 1, "", 1, "next=%2Fadmin%2F"},
		{1, "POST", "bob", "", "", "http://example.com/admin/users/5", "application/json", "application/x-www-form-urlencoded", 1, "", 2, "reason=support+ticket+42"},
		{0, "POST", "alice", "http://evil.example", "cross-site", "", "", "application/x-www-form-urlencoded", 1, "", 1, ""},
		{1, "GET", "..", "", "", "", "*/*", "", 2, "", 0, ""},
		{0, "POST", "%2e%2e%2f4", "", "none", "//evil.example/x", "text/html", "multipart/form-data; boundary=zz", 3, "\x05", 1, "--zz\r\nContent-Disposition: form-data; name=\"loginas_csrf\"\r\n\r\nx\r\n--zz--"},
		{1, "POST", "carol", "null", "same-site", "javascript:alert(1)", "application/json, text/html", "text/plain", 4, sessionName + "=AAAA; " + sessionName + "=BBBB", 3, "loginas_csrf=%00%ff&next=//evil"},
		{0, "DELETE", "admin", "", "", "", "", "", 2, "", 1, "next=/\\evil"},
		{1, "POST", strings.Repeat("9", 200), "", "same-origin", "", "", "application/x-www-form-urlencoded", 1, "", 1, "reason=" + strings.Repeat("%E2%80%AE", 100)},
		{0, "POST", "alice", "", "", "", "", "application/x-www-form-urlencoded", 1, "", 1, strings.Repeat("a=b&", 20000)},
	}
	for _, s := range seeds {
		f.Add(s.store, s.method, s.id, s.origin, s.site, s.referer, s.accept, s.ctype, s.cookieMode, s.cookieData, s.tokenMode, s.body)
	}
	f.Fuzz(func(t *testing.T, store uint8, method, id, origin, site, referer, accept, ctype string, cookieMode uint8, cookieData string, tokenMode uint8, body string) {
		app := rig.app(t, store)
		path := route
		if route == "" {
			path = "/admin/loginas/" + id
		} else if id != "" {
			path += "?" + id
		}
		// Only requests a server could receive reach the handler.
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		// The session the request carries, and who it belongs to.
		var cookie, token, owner string
		switch cookieMode % 5 {
		case 1:
			cookie, token = fuzzSession(t, app, false)
			owner = "admin"
		case 2:
			cookie, token = fuzzSession(t, app, true)
			owner = "alice"
		case 3: // a valid cookie with one byte changed
			cookie, token = fuzzSession(t, app, false)
			if cookieData != "" && len(cookie) > 4 {
				b := []byte(cookie)
				i := 4 + int(cookieData[0])%(len(b)-4)
				b[i] ^= cookieData[len(cookieData)-1] | 1
				cookie = string(b)
			}
		case 4:
			cookie = cookieData
		}
		withToken := tokenMode%4 == 1 || tokenMode%4 == 2
		if tokenMode%4 == 1 {
			body += "&loginas_csrf=" + url.QueryEscape(token)
		}
		req, err := http.NewRequest(method, "http://example.com"+u.RequestURI(), strings.NewReader(body))
		if err != nil {
			return
		}
		headers := map[string]string{
			"Origin": origin, "Sec-Fetch-Site": site, "Referer": referer,
			"Accept": accept, "Content-Type": ctype, "Cookie": cookie,
		}
		switch tokenMode % 4 {
		case 2:
			headers[loginas.CSRFHeader] = token
		case 3:
			headers[loginas.CSRFHeader] = cookieData
		}
		for name, v := range headers {
			if v != "" && fuzzHeaderValue(v) {
				req.Header.Set(name, v)
			}
		}
		rec := httptest.NewRecorder()
		app.engine.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, u.RequestURI(), rec.Code, rec.Body)
		}
		if owner == "" || withToken {
			return
		}
		// Without the token the session may be left alone or signed out,
		// never handed to someone else.
		if next := rec.Result().Cookies(); len(next) > 0 {
			var st state
			app.clientFor(t).getJSON("/test/state", &st, header("Cookie", cookieHeader(next)))
			if st.user() != "" && st.user() != owner {
				t.Fatalf("%s %s without the token turned %s's session into %s's", method, u.RequestURI(), owner, st.user())
			}
		}
	})
}

// FuzzHTTPLoginAs fuzzes POST /admin/loginas/:id; the id input is the
// path's last segment.
func FuzzHTTPLoginAs(f *testing.F) { fuzzRoute(f, "") }

// FuzzHTTPLogout fuzzes POST /admin/loginas/logout; the id input becomes its
// query string.
func FuzzHTTPLogout(f *testing.F) { fuzzRoute(f, "/admin/loginas/logout") }
