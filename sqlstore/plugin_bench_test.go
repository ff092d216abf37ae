package sqlstore

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// BenchmarkPluginPaired is the core's paired request benchmark with this
// store as Options.Store, on SQLite: each iteration serves, in turn, the
// app without the plugin (base) and the app with it (plugin), with the same
// kind of session, and reports the median of each side and the extra-% of
// the plugin. Signed in, the plugin asks the store nothing; impersonated, it
// looks the impersonation up once (Entry) on every request, or, with
// Options.EntryCache, once a second.
func BenchmarkPluginPaired(b *testing.B) {
	gin.SetMode(gin.TestMode)
	users := map[string]loginas.User{
		"1": {ID: "1", Name: "admin", Superuser: true, Active: true},
		"4": {ID: "4", Name: "alice", Active: true},
	}
	find := func(_ context.Context, id string) (loginas.User, error) {
		if u, ok := users[id]; ok {
			return u, nil
		}
		return loginas.User{}, loginas.ErrUserNotFound
	}
	store := sqliteBackend().newStore(b)
	fill(b, store, 10_000, 0)
	checkpoint(b, store)

	newApp := func(withPlugin bool, entryCache time.Duration) *gin.Engine {
		r := gin.New()
		sessionStore := cookie.NewStore([]byte("bench-hash-key-0123456789abcdef0123456789abcdef"))
		sessionStore.Options(sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true})
		r.Use(sessions.Sessions("bench", sessionStore))
		if withPlugin {
			if _, err := loginas.Register(r, loginas.Options{
				FindUser: find, SessionKey: "uid", Secret: []byte("bench-secret-0123456789abcdef0123456789abcdef"),
				Store: store, EntryCache: entryCache, Audit: func(context.Context, loginas.Event) error { return nil }, Logger: slog.New(slog.DiscardHandler),
			}); err != nil {
				b.Fatal(err)
			}
		}
		r.POST("/signin", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("uid", c.PostForm("id"))
			_ = s.Save()
		})
		r.GET("/token", func(c *gin.Context) { c.String(http.StatusOK, loginas.Token(c)) })
		r.GET("/landing", func(c *gin.Context) { // shows and consumes the switch's flash
			s := sessions.Default(c)
			flashes := s.Flashes()
			_ = s.Save()
			c.JSON(http.StatusOK, flashes)
		})
		r.GET("/page", func(c *gin.Context) {
			uid, _ := sessions.Default(c).Get("uid").(string)
			c.String(http.StatusOK, uid)
		})
		return r
	}
	serve := func(h http.Handler, method, target, cookieHdr string, form url.Values) *httptest.ResponseRecorder {
		var req *http.Request
		if form != nil {
			req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(method, target, nil)
		}
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if cookieHdr != "" {
			req.Header.Set("Cookie", cookieHdr)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	cookieOf := func(rec *httptest.ResponseRecorder, old string) string {
		for _, c := range rec.Result().Cookies() {
			if c.Name == "bench" {
				return c.Name + "=" + c.Value
			}
		}
		return old
	}
	signIn := func(h http.Handler, id string) string {
		return cookieOf(serve(h, http.MethodPost, "/signin", "", url.Values{"id": {id}}), "")
	}
	without, with, cached := newApp(false, 0), newApp(true, 0), newApp(true, time.Second)
	impersonated := func(with http.Handler) string {
		c := signIn(with, "1")
		tok := serve(with, http.MethodGet, "/token", c, nil)
		c = cookieOf(tok, c)
		sw := serve(with, http.MethodPost, "/admin/loginas/4", c, url.Values{loginas.CSRFField: {tok.Body.String()}})
		if sw.Code != http.StatusSeeOther {
			b.Fatalf("switch: %d %s", sw.Code, sw.Body)
		}
		c = cookieOf(sw, c)
		return cookieOf(serve(with, http.MethodGet, "/landing", c, nil), c)
	}
	for _, c := range []struct {
		name, user, session string
		app                 http.Handler
	}{
		{"signed-in", "1", signIn(with, "1"), with},
		{"impersonated", "4", impersonated(with), with},
		{"impersonated-entrycache", "4", impersonated(cached), cached},
	} {
		b.Run("store=sqlite/case="+c.name, func(b *testing.B) {
			sides := []struct {
				app     http.Handler
				session string
				took    []time.Duration
			}{
				{app: without, session: signIn(without, c.user)},
				{app: c.app, session: c.session},
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range sides {
					side := &sides[(i+j)%len(sides)]
					start := time.Now()
					rec := serve(side.app, http.MethodGet, "/page", side.session, nil)
					side.took = append(side.took, time.Since(start))
					if rec.Code != http.StatusOK || rec.Body.String() != c.user {
						b.Fatalf("GET /page: %d %q", rec.Code, rec.Body)
					}
				}
			}
			median := func(d []time.Duration) float64 {
				d = slices.Clone(d)
				slices.Sort(d)
				return float64(d[len(d)/2])
			}
			base, plugin := median(sides[0].took), median(sides[1].took)
			b.ReportMetric(base, "base-ns")
			b.ReportMetric(plugin, "plugin-ns")
			b.ReportMetric(100*(plugin/base-1), "extra-%")
		})
	}
}
