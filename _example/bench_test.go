package main

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
)

// benchBrowser sends requests straight to the engine, keeping the session
// cookie as a browser does: no network, so that a benchmark times the app.
type benchBrowser struct {
	b      *testing.B
	router *gin.Engine
	cookie string
}

func (bb *benchBrowser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if bb.cookie != "" {
		req.Header.Set("Cookie", bb.cookie)
	}
	rec := httptest.NewRecorder()
	bb.router.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionName {
			bb.cookie = c.Name + "=" + c.Value
		}
	}
	return rec
}

func (bb *benchBrowser) want(rec *httptest.ResponseRecorder, status int, what string) {
	if rec.Code != status {
		bb.b.Fatalf("%s: status %d, want %d: %.300s", what, rec.Code, status, rec.Body.String())
	}
}

// token returns the loginas_csrf token of the page's form posting to
// action.
func (bb *benchBrowser) token(page, action string) string {
	i := strings.Index(page, `action="`+action+`"`)
	if i < 0 {
		bb.b.Fatalf("no form posting to %s", action)
	}
	m := tokenRE.FindStringSubmatch(page[i:])
	if m == nil {
		bb.b.Fatalf("no token in the form posting to %s", action)
	}
	return html.UnescapeString(m[1])
}

// BenchmarkCycle times the load tool's cycle in process, on the default
// set-up (SQLite in memory, cookie sessions): a user page, the switch, the
// landing page, /me, the return, /me. The audit trail holds seedAudit
// events first.
func BenchmarkCycle(b *testing.B) {
	for _, seed := range []int{1000, 100_000} {
		b.Run("audit="+strconv.Itoa(seed), func(b *testing.B) {
			router, app, err := newApp(context.Background(), config{
				Secret: []byte(testSecret), MaxDuration: time.Hour, BcryptCost: bcrypt.MinCost,
				SeedUsers: 100, SeedAudit: seed, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = app.Close() }()
			bb := &benchBrowser{b: b, router: router}
			bb.want(bb.do(http.MethodPost, "/login", url.Values{"username": {"admin"}, "password": {"admin"}}), http.StatusSeeOther, "login")
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := strconv.Itoa(7 + i%100)
				page := bb.do(http.MethodGet, "/admin/users/"+id, nil)
				bb.want(page, http.StatusOK, "user page")
				sw := bb.do(http.MethodPost, "/admin/loginas/"+id, url.Values{"loginas_csrf": {bb.token(page.Body.String(), "/admin/loginas/"+id)}, "reason": {"bench"}})
				bb.want(sw, http.StatusSeeOther, "switch")
				landing := bb.do(http.MethodGet, sw.Header().Get("Location"), nil)
				bb.want(landing, http.StatusOK, "landing page")
				bb.want(bb.do(http.MethodGet, "/me", nil), http.StatusOK, "/me")
				ret := bb.do(http.MethodPost, "/admin/loginas/logout", url.Values{"loginas_csrf": {bb.token(landing.Body.String(), "/admin/loginas/logout")}})
				bb.want(ret, http.StatusSeeOther, "return")
				bb.want(bb.do(http.MethodGet, "/me", nil), http.StatusOK, "/me")
			}
		})
	}
}
