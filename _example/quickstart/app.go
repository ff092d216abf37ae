package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
)

// sessionKey is where the login keeps the signed-in user's ID, as a uint.
const sessionKey = "user_id"

// rememberCookie is the app's own remember-me cookie: it signs the browser in
// again when its session is gone.
const rememberCookie = "remember_me"

// csp allows scripts, styles and form posts from this site only: no inline
// script, no inline style.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// Config is what New needs.
type Config struct {
	Store         sessions.Store // gin-contrib/sessions store, see NewSessionStore
	Secret        []byte         // loginas.Options.Secret: 32 bytes or more
	SecureCookies bool           // Secure flag of the remember-me cookie
	Dir           string         // folder with templates/ and static/; "" is the working directory
	Audit         func(context.Context, loginas.Event) error
	Logger        *slog.Logger // nil: slog.Default()
	RequestLog    bool         // gin's request logger
}

// App is the running app: its router, its plugin and its users.
type App struct {
	Engine *gin.Engine
	Plugin *loginas.Plugin
	Users  *Users

	log    *slog.Logger
	secure bool

	mu       sync.Mutex
	remember map[string]uint // remember-me token -> user ID
}

// New builds the app: the order of the first steps (FuncMap, templates,
// sessions, plugin, then the app's routes) is the README's.
func New(cfg Config) (*App, error) {
	a := &App{Users: seedUsers(), log: cfg.Logger, secure: cfg.SecureCookies, remember: map[string]uint{}}
	if a.log == nil {
		a.log = slog.Default()
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "."
	}

	r := gin.New()
	if cfg.RequestLog {
		r.Use(gin.Logger())
	}
	r.Use(gin.Recovery(), securityHeaders(), crossOriginProtection())
	r.SetFuncMap(loginas.FuncMap())
	r.LoadHTMLGlob(filepath.Join(dir, "templates", "*"))
	r.Use(sessions.Sessions("quickstart", cfg.Store))
	lg, err := loginas.Register(r, loginas.Options{
		FindUser:   a.findUser,
		SessionKey: sessionKey,
		Secret:     cfg.Secret,
		Audit:      cfg.Audit,
		Logger:     cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	a.Engine, a.Plugin = r, lg

	r.Use(a.rememberMe)
	r.Static("/static", filepath.Join(dir, "static"))
	r.GET("/", a.home)
	r.GET("/login", a.loginPage)
	r.POST("/login", a.login)
	r.POST("/logout", lg.ReturnRoute(), a.logout)
	r.GET("/me", a.me)
	admin := r.Group("/admin", a.requireAdmin)
	admin.GET("/", a.userList)
	admin.GET("/users/:id", a.userPage)
	return a, nil
}

// findUser is Options.FindUser: the README's GORM lookup, on the map.
func (a *App) findUser(_ context.Context, id string) (loginas.User, error) {
	n, err := strconv.ParseUint(id, 10, 0)
	if err != nil {
		return loginas.User{}, loginas.ErrUserNotFound
	}
	u, ok := a.Users.Find(uint(n))
	if !ok {
		return loginas.User{}, loginas.ErrUserNotFound
	}
	return toLoginas(u), nil
}

func toLoginas(u User) loginas.User {
	return loginas.User{ID: strconv.FormatUint(uint64(u.ID), 10), Name: u.Name,
		Superuser: u.IsAdmin, Active: u.Active, Data: &u}
}

// currentUser is the user the session is signed in as (the target while
// impersonating), read from the uint under sessionKey.
func (a *App) currentUser(c *gin.Context) (User, bool) {
	id, ok := sessions.Default(c).Get(sessionKey).(uint)
	if !ok {
		return User{}, false
	}
	u, ok := a.Users.Find(id)
	return u, ok && u.Active
}

// render is the README's flash recipe, plus the signed-in user for the nav.
func (a *App) render(c *gin.Context, status int, name string, data gin.H) {
	s := sessions.Default(c)
	if flashes := s.Flashes(); len(flashes) > 0 {
		data["Flashes"] = flashes
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
	}
	data["Loginas"] = loginas.BannerFor(c)
	if u, ok := a.currentUser(c); ok {
		data["User"] = &u
	}
	c.HTML(status, name, data)
}

func (a *App) home(c *gin.Context) {
	a.render(c, http.StatusOK, "home.html", gin.H{"Title": "Home"})
}

func (a *App) loginPage(c *gin.Context) {
	a.render(c, http.StatusOK, "login.html", gin.H{"Title": "Log in"})
}

// login is the app's own login: on success it renews the session with the
// user's ID as a uint, as the README says.
func (a *App) login(c *gin.Context) {
	u, ok := a.Users.Authenticate(c.PostForm("email"), c.PostForm("password"))
	if !ok {
		a.render(c, http.StatusUnauthorized, "login.html", gin.H{"Title": "Log in", "Error": "Wrong e-mail address or password."})
		return
	}
	if err := loginas.RenewSession(c, map[string]any{sessionKey: u.ID}); err != nil {
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	if c.PostForm("remember") != "" {
		token := rand.Text()
		a.mu.Lock()
		a.remember[token] = u.ID
		a.mu.Unlock()
		c.SetCookie(rememberCookie, token, 30*24*3600, "/", "", a.secure, true)
	}
	a.log.Info("audit: login", "user_id", u.ID, "email", u.Email)
	c.Redirect(http.StatusSeeOther, "/")
}

// rememberMe signs a browser without a signed-in session in again from its
// remember-me cookie.
func (a *App) rememberMe(c *gin.Context) {
	if _, ok := a.currentUser(c); ok {
		return
	}
	token, err := c.Cookie(rememberCookie)
	if err != nil {
		return
	}
	a.mu.Lock()
	id, ok := a.remember[token]
	a.mu.Unlock()
	if u, found := a.Users.Find(id); ok && found && u.Active {
		if err := loginas.RenewSession(c, map[string]any{sessionKey: u.ID}); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
		}
	}
}

// logout is the README's "Your own logout handler" recipe, behind ReturnRoute.
func (a *App) logout(c *gin.Context) {
	restored, err := a.Plugin.Restore(c)
	if err != nil {
		c.AbortWithStatus(http.StatusServiceUnavailable) // nothing changed
		return
	}
	if restored { // the actor is back: do not sign them out
		c.Redirect(http.StatusSeeOther, "/admin/")
		return
	}
	if token, err := c.Cookie(rememberCookie); err == nil {
		a.mu.Lock()
		delete(a.remember, token)
		a.mu.Unlock()
	}
	c.SetCookie(rememberCookie, "", -1, "/", "", a.secure, true)
	if u, ok := a.currentUser(c); ok {
		a.log.Info("audit: logout", "user_id", u.ID, "email", u.Email)
	}
	if err := loginas.RenewSession(c, nil); err != nil { // a fresh, empty session
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	c.Redirect(http.StatusSeeOther, "/login")
}

// me answers who the session is signed in as, as JSON.
func (a *App) me(c *gin.Context) {
	u, ok := a.currentUser(c)
	if !ok {
		c.JSON(http.StatusUnauthorized, gin.H{"error": "not signed in"})
		return
	}
	var impersonator *string
	if imp, ok := loginas.Current(c); ok {
		impersonator = &imp.Actor.Name
	}
	c.JSON(http.StatusOK, gin.H{"id": u.ID, "name": u.Name,
		"is_impersonated": loginas.IsImpersonated(c), "impersonator": impersonator})
}

// requireAdmin lets only administrators into /admin: while impersonating,
// that is the target's right, not the actor's.
func (a *App) requireAdmin(c *gin.Context) {
	u, ok := a.currentUser(c)
	switch {
	case !ok:
		c.Redirect(http.StatusSeeOther, "/login")
		c.Abort()
	case !u.IsAdmin:
		a.render(c, http.StatusForbidden, "error.html", gin.H{"Title": "Forbidden", "Error": "Administrators only."})
		c.Abort()
	}
}

func (a *App) userList(c *gin.Context) {
	a.render(c, http.StatusOK, "users.html", gin.H{"Title": "Users", "Users": a.Users.All()})
}

func (a *App) userPage(c *gin.Context) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 0)
	u, ok := a.Users.Find(uint(id))
	if err != nil || !ok {
		a.render(c, http.StatusNotFound, "error.html", gin.H{"Title": "Not found", "Error": "No such user."})
		return
	}
	a.render(c, http.StatusOK, "user.html", gin.H{"Title": u.Name, "Target": u,
		"Button": loginas.ButtonFor(c, toLoginas(u))})
}

// securityHeaders sets the strict Content-Security-Policy on every answer.
func securityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
	}
}

// crossOriginProtection is the app's CSRF protection for its own forms
// (login, logout): Go's http.CrossOriginProtection refuses cross-origin
// unsafe requests by their Sec-Fetch-Site or Origin header.
func crossOriginProtection() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": err.Error()})
		}
	}
}
