package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"golang.org/x/crypto/bcrypt"
)

// Page sizes of the lists.
const (
	usersPerPage  = 50
	eventsPerPage = 100
)

// viewerKey is the gin context key of the signed-in *User.
const viewerKey = "example.viewer"

// routes mounts the app's pages. The loginas routes are already mounted by
// loginas.Register.
func (app *App) routes(r *gin.Engine) {
	r.StaticFS("/static", staticFS())
	r.GET("/", app.home)
	r.GET("/login", app.loginPage)
	r.POST("/login", app.checkOrigin, app.login)
	r.GET("/me", app.me)

	// Nobody may change a credential or the e-mail address of the account
	// they are impersonating: the plugin's Guard refuses these pages while
	// impersonating (403, audited as denied, guarded).
	account := r.Group("/account", app.requireSignedIn, app.plugin.Guard())
	account.GET("", app.accountPage)
	account.POST("/password", app.checkOrigin, app.changePassword)
	account.POST("/email", app.checkOrigin, app.changeEmail)
	account.GET("/api-keys", app.apiKeysPage)
	account.POST("/api-keys", app.checkOrigin, app.createAPIKey)
	account.POST("/api-keys/:id/revoke", app.checkOrigin, app.revokeAPIKey)

	// The profile is not guarded: support may fix a user's display name
	// while impersonating them, unless -read-only refuses every change.
	r.GET("/profile", app.requireSignedIn, app.profilePage)
	r.POST("/profile", app.checkOrigin, app.requireSignedIn, app.updateProfile)

	// Who has used my account: every signed-in user's, and the consent
	// form with -require-consent.
	r.GET("/access", app.requireSignedIn, app.accessPage)

	admin := r.Group("/admin", app.requireStaff)
	admin.GET("/", app.dashboard)
	admin.GET("/users", app.userList)
	admin.GET("/users/:id", app.userPage)
	admin.POST("/users/:id/active", app.checkOrigin, app.requireSuperuser, app.setActive)
	admin.POST("/users/:id/end-impersonations", app.checkOrigin, app.requireSuperuser, app.endImpersonations)
	admin.GET("/audit", app.auditPage)
	admin.GET("/live", app.livePage)

	r.NoRoute(func(c *gin.Context) {
		app.renderError(c, http.StatusNotFound, "There is no page at this address.")
	})
}

// checkOrigin refuses cross-origin posts (Sec-Fetch-Site, Origin) to the
// app's own forms, and caps their bodies at 16 KiB. With the SameSite=Lax
// session cookie, that is the app's CSRF protection; the plugin's forms
// carry their own token as well.
func (app *App) checkOrigin(c *gin.Context) {
	if err := app.sameOrigin.Check(c.Request); err != nil {
		app.renderError(c, http.StatusForbidden, "Cross-origin request refused.")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 16<<10)
	c.Next()
}

// loadViewer finds the signed-in user, if any, and keeps it in the context.
// While impersonating, the plugin has loaded the target already. A session
// whose user no longer exists or is disabled counts as signed out.
func (app *App) loadViewer(c *gin.Context) {
	if imp, ok := loginas.Current(c); ok {
		c.Set(viewerKey, userOf(imp.Target))
		c.Next()
		return
	}
	raw, _ := sessions.Default(c).Get(userIDKey).(string)
	id, err := strconv.ParseInt(raw, 10, 64)
	if raw == "" || err != nil {
		c.Next()
		return
	}
	u, err := app.db.UserByID(c.Request.Context(), id)
	switch {
	case errors.Is(err, errNoUser):
	case err != nil:
		app.log.Error("loading the signed-in user", "err", err)
		app.renderError(c, http.StatusInternalServerError, "The user database is unavailable, try again.")
		return
	case u.IsActive:
		c.Set(viewerKey, u)
	}
	c.Next()
}

// viewerOf returns the signed-in user: while impersonating, the target.
func viewerOf(c *gin.Context) (*User, bool) {
	v, ok := c.Get(viewerKey)
	if !ok {
		return nil, false
	}
	u, ok := v.(*User)
	return u, ok && u != nil
}

// requireStaff guards /admin/: staff and superusers only. Others are sent to
// the login page, except while impersonating, where the page says it is not
// available to the user in use (and the banner offers the way back).
func (app *App) requireStaff(c *gin.Context) {
	v, ok := viewerOf(c)
	if ok && (v.IsStaff || v.IsSuperuser) {
		c.Next()
		return
	}
	if ok && loginas.IsImpersonated(c) {
		app.renderError(c, http.StatusForbidden, "This page is not available as "+v.Username+".")
		return
	}
	loginRedirect(c)
}

// requireSignedIn sends visitors who are not signed in to the login page.
func (app *App) requireSignedIn(c *gin.Context) {
	if _, ok := viewerOf(c); ok {
		c.Next()
		return
	}
	loginRedirect(c)
}

// requireSuperuser refuses the admin's write actions to anyone but a
// superuser (while impersonating, the viewer is the target, never one).
func (app *App) requireSuperuser(c *gin.Context) {
	if v, ok := viewerOf(c); ok && v.IsSuperuser {
		c.Next()
		return
	}
	app.renderError(c, http.StatusForbidden, "Only superusers may do this.")
}

func (app *App) home(c *gin.Context) {
	app.render(c, http.StatusOK, "home", Page{Title: "Home", Section: "home"})
}

type loginData struct {
	Username string
	Next     string
	Error    string
	// Blocked hides the form while impersonating: the actor must return to
	// their own account first.
	Blocked bool
}

func (app *App) loginPage(c *gin.Context) {
	d := loginData{Next: localOrEmpty(c.Query("next")), Blocked: loginas.IsImpersonated(c)}
	app.render(c, http.StatusOK, "login", Page{Title: "Log in", Section: "login", Data: d})
}

func (app *App) login(c *gin.Context) {
	username, valid := cleanText(c.PostForm("username"), 150)
	password := c.PostForm("password")
	d := loginData{Username: echoText(username), Next: localOrEmpty(c.PostForm("next"))}
	if loginas.IsImpersonated(c) {
		d.Blocked = true
		app.render(c, http.StatusConflict, "login", Page{Title: "Log in", Section: "login", Data: d})
		return
	}
	fail := func(status int, msg string) {
		d.Error = msg
		app.render(c, status, "login", Page{Title: "Log in", Section: "login", Data: d})
	}
	var u *User
	var err error
	if valid { // text PostgreSQL would refuse (invalid UTF-8, NUL) names nobody
		u, err = app.db.UserByName(c.Request.Context(), username)
	} else {
		err = errNoUser
	}
	switch {
	case errors.Is(err, errNoUser):
		_ = bcrypt.CompareHashAndPassword(app.dummyHash, []byte(password))
		fail(http.StatusUnauthorized, "Wrong username or password.")
		return
	case err != nil:
		app.log.Error("looking up a user", "err", err)
		app.renderError(c, http.StatusInternalServerError, "The user database is unavailable, try again.")
		return
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(password)) != nil {
		fail(http.StatusUnauthorized, "Wrong username or password.")
		return
	}
	if !u.IsActive {
		fail(http.StatusForbidden, "This account is disabled.")
		return
	}
	values := map[string]any{
		userIDKey: u.IDString(),
		flashKey:  []any{"Welcome, " + u.Username + "."},
	}
	if err := loginas.RenewSession(c, values); err != nil {
		app.sessionFailed(c, err)
		return
	}
	if err := app.db.TouchLogin(c.Request.Context(), u.ID, time.Now()); err != nil {
		app.log.Warn("recording the last login", "user", u.Username, "err", err)
	}
	dest := d.Next
	if dest == "" {
		dest = "/"
		if u.IsStaff || u.IsSuperuser {
			dest = "/admin/"
		}
	}
	c.Redirect(http.StatusSeeOther, dest)
}

// localOrEmpty returns next if it is a path on this site, else "".
func localOrEmpty(next string) string {
	if loginas.IsLocalURL(next) {
		return next
	}
	return ""
}

// meJSON is the body of GET /me for a signed-in user.
type meJSON struct {
	ID             int64   `json:"id"`
	Username       string  `json:"username"`
	IsImpersonated bool    `json:"is_impersonated"`
	Impersonator   *string `json:"impersonator"`
}

// anonymousJSON is the body of GET /me for a visitor who is not signed in.
type anonymousJSON struct {
	ID             *int64 `json:"id"`
	Username       string `json:"username"`
	IsImpersonated bool   `json:"is_impersonated"`
}

func (app *App) me(c *gin.Context) {
	v, ok := viewerOf(c)
	if !ok {
		c.JSON(http.StatusUnauthorized, anonymousJSON{})
		return
	}
	body := meJSON{ID: v.ID, Username: v.Username}
	if imp, ok := loginas.Current(c); ok {
		body.IsImpersonated = true
		body.Impersonator = &imp.Actor.Name
	}
	c.JSON(http.StatusOK, body)
}
