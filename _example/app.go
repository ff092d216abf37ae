package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/redis"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"golang.org/x/crypto/bcrypt"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Names the app uses in the session and for its cookie.
const (
	sessionName = "session"
	flashKey    = loginas.DefaultFlashKey // the plugin adds its messages there too
)

// contentSecurityPolicy is sent with every response: no script at all, styles
// and images from this origin only, forms post only here.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// sessionMaxAge is how long a session lasts without a request, in seconds.
const sessionMaxAge = 12 * 60 * 60

// config is what the command-line flags set.
type config struct {
	Addr           string        // -addr
	DBPath         string        // -db; empty: a fresh database in memory
	DatabaseURL    string        // -database: postgres://...; empty: SQLite
	RedisAddr      string        // -redis; empty: sessions in a signed cookie
	Secret         []byte        // -secret; must not be empty here (main makes one up)
	MaxDuration    time.Duration // -max-duration
	SeedUsers      int           // -seed-users
	SeedAudit      int           // -seed-audit
	ReadOnly       bool          // -read-only: impersonated sessions may not change anything
	RequireConsent bool          // -require-consent: a switch needs the target's grant
	EntryCache     time.Duration // -entry-cache: the plugin's Options.EntryCache

	// BcryptCost hashes the six named users' passwords. If zero,
	// bcrypt.DefaultCost.
	BcryptCost int
	// Logger receives the request log and the plugin's errors. If nil,
	// slog.Default().
	Logger *slog.Logger
	// Clock is handed to the plugin. If nil, time.Now.
	Clock func() time.Time
	// store replaces the session store (tests use it to make one fail).
	store sessions.Store
}

// App is the example admin app: its database, its session store and the
// loginas plugin.
type App struct {
	cfg       config
	db        *DB
	plugin    *loginas.Plugin
	store     sessions.Store
	pages     map[string]*template.Template
	errorPage *template.Template
	log       *slog.Logger
	// sameOrigin refuses cross-origin posts to the app's own forms.
	sameOrigin *http.CrossOriginProtection
	closers    []func() error
	// seeded is true when this start created the named users.
	seeded bool
	// dummyHash is compared against when a login names no user, so that a
	// wrong name takes as long as a wrong password.
	dummyHash []byte
}

// deriveKey returns a key for one purpose made from the app's secret, so
// that the cookie keys and the plugin's key are never the same bytes.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("loginas-example/" + purpose))
	return m.Sum(nil)
}

// newApp opens the database, seeds it, sets up the session store and the
// plugin, and returns the router. Seeding stops when ctx is done. Close the
// App when done.
func newApp(ctx context.Context, cfg config) (*gin.Engine, *App, error) {
	if len(cfg.Secret) == 0 {
		return nil, nil, errors.New("a secret is required")
	}
	if cfg.MaxDuration <= 0 {
		return nil, nil, fmt.Errorf("-max-duration must be positive (got %s)", cfg.MaxDuration)
	}
	if cfg.SeedUsers < 0 || cfg.SeedUsers > 9999 {
		return nil, nil, fmt.Errorf("-seed-users must be between 0 and 9999 (got %d)", cfg.SeedUsers)
	}
	if cfg.SeedAudit < 0 || cfg.SeedAudit > 10_000_000 {
		return nil, nil, fmt.Errorf("-seed-audit must be between 0 and 10000000 (got %d)", cfg.SeedAudit)
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	app := &App{cfg: cfg, log: cfg.Logger, sameOrigin: http.NewCrossOriginProtection()}
	ok := false
	defer func() {
		if !ok {
			_ = app.Close()
		}
	}()

	db, err := openDB(cfg.DatabaseURL, cfg.DBPath)
	if err != nil {
		return nil, nil, err
	}
	app.db = db
	db.now = cfg.Clock
	app.closers = append(app.closers, db.Close)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if app.seeded, err = db.seed(ctx, cfg.SeedUsers, cfg.BcryptCost); err != nil {
		return nil, nil, fmt.Errorf("seeding the database: %w", err)
	}
	if err := db.seedAudit(ctx, cfg.SeedAudit, len(seedUsers)+cfg.SeedUsers); err != nil {
		return nil, nil, err
	}

	if app.dummyHash, err = bcrypt.GenerateFromPassword(randomBytes(16), cfg.BcryptCost); err != nil {
		return nil, nil, err
	}
	if err := app.openStore(); err != nil {
		return nil, nil, err
	}
	if err := app.parseTemplates(); err != nil {
		return nil, nil, err
	}

	router := gin.New()
	if err := router.SetTrustedProxies(nil); err != nil {
		return nil, nil, err
	}
	router.Use(app.requestLog, app.securityHeaders, gin.CustomRecovery(app.recovered))
	router.Use(sessions.Sessions(sessionName, app.store))
	if err := app.registerPlugin(router); err != nil {
		return nil, nil, err
	}
	router.Use(app.loadViewer)
	app.routes(router)
	ok = true
	return router, app, nil
}

// Close releases the database and the session store.
func (app *App) Close() error {
	var errs []error
	for i := len(app.closers) - 1; i >= 0; i-- {
		errs = append(errs, app.closers[i]())
	}
	app.closers = nil
	return errors.Join(errs...)
}

// openStore makes the session store: a signed and encrypted cookie, or
// Redis when -redis is given. Both are keyed from the secret.
func (app *App) openStore() error {
	auth, enc := deriveKey(app.cfg.Secret, "session-auth"), deriveKey(app.cfg.Secret, "session-enc")
	switch {
	case app.cfg.store != nil:
		app.store = app.cfg.store
	case app.cfg.RedisAddr != "":
		store, err := redis.NewStore(16, "tcp", app.cfg.RedisAddr, "", "", auth, enc)
		if err != nil {
			return fmt.Errorf("connecting to Redis at %s: %w", app.cfg.RedisAddr, err)
		}
		if rs, err := redis.GetRedisStore(store); err == nil {
			app.closers = append(app.closers, rs.Close)
		}
		app.store = store
	default:
		app.store = newCookieStore(auth, enc)
	}
	app.store.Options(sessions.Options{
		Path:     "/",
		MaxAge:   sessionMaxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// requestLog writes one line per request. On an impersonated request it
// names both people ("admin as alice").
func (app *App) requestLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", c.Writer.Status()),
		slog.Duration("duration", time.Since(start)),
		slog.String("ip", c.ClientIP()),
	}
	if imp, ok := loginas.Current(c); ok {
		attrs = append(attrs, slog.String("as", imp.Actor.Name+" as "+imp.Target.Name))
		attrs = append(attrs, imp.LogAttrs()...)
	} else if v, ok := viewerOf(c); ok {
		attrs = append(attrs, slog.String("user", v.Username))
	}
	level := slog.LevelInfo
	switch {
	case c.Request.Context().Err() != nil:
		// The client went away mid-request; a failure that follows is not
		// the server's.
		attrs = append(attrs, slog.Bool("client_gone", true))
	case c.Writer.Status() >= http.StatusInternalServerError:
		level = slog.LevelError
	}
	app.log.LogAttrs(context.WithoutCancel(c.Request.Context()), level, "request", attrs...)
}

// securityHeaders sets the Content-Security-Policy and its companions on
// every response; pages that depend on the session are not cached.
func (app *App) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(c.Request.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

// recovered answers a panic with the error page instead of a dropped
// connection.
func (app *App) recovered(c *gin.Context, err any) {
	app.log.Error("panic", "path", c.Request.URL.Path, "err", err)
	app.renderError(c, http.StatusInternalServerError, "Something went wrong on our side. Try again.")
}

// errorHandler is the plugin's Options.ErrorHandler. Failures of a store
// get a page that says so, with their status (500 or 503); refusals (403,
// 400, …) get their message.
func (app *App) errorHandler(c *gin.Context, status int, err error) {
	msg := http.StatusText(status)
	var refusal *loginas.Refusal
	switch {
	case errors.Is(err, loginas.ErrSessionStore):
		msg = storeUnavailable
	case errors.Is(err, loginas.ErrUserStore), errors.Is(err, loginas.ErrStore):
		msg = "The user database is unavailable, try again."
	case errors.Is(err, loginas.ErrAudit):
		msg = "The audit trail could not be written, so nothing was changed. Try again."
	case errors.As(err, &refusal) && refusal.Message != "":
		msg = refusal.Message
	case status >= http.StatusInternalServerError:
		msg = "Something went wrong on our side. Try again."
	}
	app.renderError(c, status, msg)
}

// storeUnavailable is the text of the 503 page.
const storeUnavailable = "The session store is unavailable, try again."

// parseTemplates builds one template set per page: the layout, the shared
// partials (files named _*.html), the loginas partials and the page's own
// file, which defines "content".
func (app *App) parseTemplates() error {
	funcs := template.FuncMap{
		"datetime": formatTime,
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/_*.html")
	if err != nil {
		return err
	}
	if _, err := loginas.AddTemplates(base); err != nil {
		return err
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return err
	}
	app.pages = map[string]*template.Template{}
	for _, name := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if page == "layout" || strings.HasPrefix(page, "_") {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(templateFiles, name); err != nil {
			return err
		}
		app.pages[page] = t
	}
	app.errorPage = app.pages["error"]
	if app.errorPage == nil {
		return errors.New("templates/error.html is missing")
	}
	return nil
}

// Page is the data every page gets; Data holds the page's own.
type Page struct {
	Title   string
	Section string // the navigation entry to mark as current
	Viewer  *User  // the signed-in user (the target while impersonating), or nil
	Flashes []string
	Banner  loginas.Banner
	Data    any
}

// render writes a page inside the layout. It reads and clears the flash
// messages, saving the session before the body is written.
func (app *App) render(c *gin.Context, status int, name string, page Page) {
	t := app.pages[name]
	if t == nil {
		app.renderError(c, http.StatusInternalServerError, "Something went wrong on our side. Try again.")
		return
	}
	page.Viewer, _ = viewerOf(c)
	page.Banner = loginas.BannerFor(c)
	// Only a session holding flashes is saved: an anonymous page view must
	// not create a session in the store.
	if s := sessions.Default(c); s.Get(flashKey) != nil {
		for _, f := range s.Flashes() {
			if text, ok := f.(string); ok {
				page.Flashes = append(page.Flashes, text)
			}
		}
		if err := s.Save(); err != nil {
			app.sessionFailed(c, err)
			return
		}
	}
	app.write(c, status, t, page)
}

// renderError writes an error page (JSON for JSON clients and for /me). It does not
// touch the session, which may be what failed; while impersonating, the
// banner is still shown for 4xx pages.
func (app *App) renderError(c *gin.Context, status int, msg string) {
	if loginas.WantsJSON(c) || c.Request.URL.Path == "/me" {
		c.AbortWithStatusJSON(status, gin.H{"error": msg})
		return
	}
	page := Page{Title: http.StatusText(status), Data: errorData{Status: status, Message: msg}}
	page.Viewer, _ = viewerOf(c)
	if imp, ok := loginas.Current(c); ok && page.Viewer == nil {
		// The plugin's read-only refusal comes before loadViewer has run;
		// the impersonation carries the target the plugin just loaded.
		page.Viewer = userOf(imp.Target)
	}
	if status < http.StatusInternalServerError {
		page.Banner = loginas.BannerFor(c)
	}
	app.write(c, status, app.errorPage, page)
	c.Abort()
}

type errorData struct {
	Status  int
	Message string
}

// write executes a page into a buffer first, so a template error gives a
// clean 500 rather than half a page.
func (app *App) write(c *gin.Context, status int, t *template.Template, page Page) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", page); err != nil {
		app.log.Error("rendering a page", "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("Internal Server Error\n"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// formatTime writes a time for the pages, in UTC.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// staticFS is the embedded static directory.
func staticFS() http.FileSystem {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return http.FS(sub)
}
