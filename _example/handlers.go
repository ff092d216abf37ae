package main

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	gsessions "github.com/gorilla/sessions"
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

	// Nobody may change the password of the account they are
	// impersonating: the plugin's Guard refuses these while impersonating.
	account := r.Group("/account", app.requireSignedIn, app.plugin.Guard())
	account.GET("", app.accountPage)
	account.POST("/password", app.checkOrigin, app.changePassword)
	account.GET("/api-keys", app.apiKeysPage)
	account.POST("/api-keys", app.checkOrigin, app.createAPIKey)
	account.POST("/api-keys/:id/revoke", app.checkOrigin, app.revokeAPIKey)

	// The profile is not guarded: support may fix a user's name or e-mail
	// while impersonating them, unless -read-only refuses every change.
	r.GET("/profile", app.requireSignedIn, app.profilePage)
	r.POST("/profile", app.checkOrigin, app.requireSignedIn, app.updateProfile)

	admin := r.Group("/admin", app.requireStaff)
	admin.GET("/", app.dashboard)
	admin.GET("/users", app.userList)
	admin.GET("/users/:id", app.userPage)
	admin.POST("/users/:id/active", app.checkOrigin, app.requireSuperuser, app.setActive)
	admin.POST("/users/:id/end-impersonations", app.checkOrigin, app.requireSuperuser, app.endImpersonations)
	admin.GET("/audit", app.auditPage)

	r.NoRoute(func(c *gin.Context) {
		app.renderError(c, http.StatusNotFound, "There is no page at this address.")
	})
}

// checkOrigin refuses cross-origin posts (Sec-Fetch-Site, Origin) to the
// app's own forms. With the SameSite=Lax session cookie, that is the app's
// CSRF protection; the plugin's forms carry their own token as well.
func (app *App) checkOrigin(c *gin.Context) {
	if err := app.sameOrigin.Check(c.Request); err != nil {
		app.renderError(c, http.StatusForbidden, "Cross-origin request refused.")
		return
	}
	c.Next()
}

// loadViewer finds the signed-in user, if any, and keeps it in the context.
// A session whose user no longer exists or is disabled counts as signed out.
func (app *App) loadViewer(c *gin.Context) {
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
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
	c.Abort()
}

// requireSignedIn sends visitors who are not signed in to the login page.
func (app *App) requireSignedIn(c *gin.Context) {
	if _, ok := viewerOf(c); ok {
		c.Next()
		return
	}
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
	c.Abort()
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

type homeData struct {
	Impersonation *loginas.Impersonation
}

func (app *App) home(c *gin.Context) {
	var d homeData
	if imp, ok := loginas.Current(c); ok {
		d.Impersonation = &imp
	}
	app.render(c, http.StatusOK, "home", Page{Title: "Home", Section: "home", Data: d})
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
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 16<<10)
	username := strings.TrimSpace(c.PostForm("username"))
	password := c.PostForm("password")
	d := loginData{Username: username, Next: localOrEmpty(c.PostForm("next"))}
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
	if username != "" && len(username) <= 150 {
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
	values := map[any]any{
		userIDKey: u.IDString(),
		flashKey:  []any{"Welcome, " + u.Username + "."},
	}
	if err := renewSession(c, values); err != nil {
		app.log.Error("saving the session", "err", err)
		app.renderError(c, http.StatusServiceUnavailable, storeUnavailable)
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

// renewSession replaces the request's session with a new one holding only
// values. A server-side store (Redis) issues a new session ID and the old
// one is deleted, so a session ID planted before the login is worthless.
func renewSession(c *gin.Context, values map[any]any) error {
	backed, ok := sessions.Default(c).(interface{ Session() *gsessions.Session })
	if !ok {
		return errors.New("the session does not expose its gorilla session")
	}
	gs := backed.Session()
	if gs == nil {
		return errors.New("the session store did not load the session")
	}
	if gs.ID != "" {
		old := *gs
		opts := *gs.Options
		opts.MaxAge = -1
		old.Options = &opts
		old.Values = map[any]any{}
		if err := old.Save(c.Request, discardWriter{}); err != nil {
			return err
		}
	}
	gs.ID = ""
	gs.IsNew = true
	gs.Values = values
	return gs.Save(c.Request, c.Writer)
}

// discardWriter drops the cookie a store writes when it deletes a session.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

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

type dashboardData struct {
	Counts        UserCounts
	StartsLastDay int
	Recent        []AuditRow
}

func (app *App) dashboard(c *gin.Context) {
	ctx := c.Request.Context()
	var d dashboardData
	var err error
	if d.Counts, err = app.db.CountUsers(ctx); err == nil {
		if d.StartsLastDay, err = app.db.CountStarts(ctx, time.Now().Add(-24*time.Hour)); err == nil {
			d.Recent, _, err = app.db.Audit(ctx, "", 0, 8)
		}
	}
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	app.render(c, http.StatusOK, "dashboard", Page{Title: "Dashboard", Section: "dashboard", Data: d})
}

// pager is the position in a paged list.
type pager struct {
	Page, Pages, Total int
	Prev, Next         string // links, empty at either end
}

func newPager(c *gin.Context, total, perPage int) pager {
	p := pager{Total: total, Pages: max(1, (total+perPage-1)/perPage)}
	p.Page, _ = strconv.Atoi(c.Query("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	link := func(page int) string {
		q := c.Request.URL.Query()
		q.Set("page", strconv.Itoa(page))
		return c.Request.URL.Path + "?" + q.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return p
}

func (p pager) offset(perPage int) int { return (p.Page - 1) * perPage }

type userListData struct {
	Query string
	Users []*User
	Pager pager
}

func (app *App) userList(c *gin.Context) {
	ctx := c.Request.Context()
	q := strings.TrimSpace(c.Query("q"))
	if len(q) > 150 {
		q = q[:150]
	}
	_, total, err := app.db.Users(ctx, q, 0, 0)
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	d := userListData{Query: q, Pager: newPager(c, total, usersPerPage)}
	if d.Users, _, err = app.db.Users(ctx, q, d.Pager.offset(usersPerPage), usersPerPage); err != nil {
		app.dbFailed(c, err)
		return
	}
	app.render(c, http.StatusOK, "users", Page{Title: "Users", Section: "users", Data: d})
}

type userPageData struct {
	User   *User
	Button loginas.Button
	// NoButton says why there is no login-as button, when there is none.
	NoButton string
	History  []AuditRow
	// CanManage shows the superuser's actions: enable or disable, end all
	// impersonations.
	CanManage bool
	IsSelf    bool
}

func (app *App) userPage(c *gin.Context) {
	u, ok := app.targetUser(c)
	if !ok {
		return
	}
	d := userPageData{User: u, Button: app.plugin.Button(c, pluginUser(u))}
	if v, ok := viewerOf(c); ok {
		d.CanManage = v.IsSuperuser && !loginas.IsImpersonated(c)
		d.IsSelf = v.ID == u.ID
	}
	if !d.Button.Visible {
		d.NoButton = app.whyNoButton(c, u)
	}
	var err error
	if d.History, err = app.db.AuditAbout(c.Request.Context(), u.IDString(), 10); err != nil {
		app.dbFailed(c, err)
		return
	}
	app.render(c, http.StatusOK, "user", Page{Title: u.Username, Section: "users", Data: d})
}

// whyNoButton explains, in the app's words, why the plugin hid the button.
func (app *App) whyNoButton(c *gin.Context, target *User) string {
	v, _ := viewerOf(c)
	switch {
	case loginas.IsImpersonated(c):
		return "You are already logged in as another user."
	case v == nil || !v.IsSuperuser:
		return "Only superusers may log in as other users."
	case v.ID == target.ID:
		return "This is your own account."
	case !target.IsActive:
		return "Disabled users cannot be logged in as."
	case target.IsSuperuser:
		return "Superusers cannot be logged in as."
	}
	return "You may not log in as this user."
}

type auditData struct {
	Action  string
	Actions []string
	Events  []AuditRow
	Pager   pager
}

func (app *App) auditPage(c *gin.Context) {
	ctx := c.Request.Context()
	d := auditData{Actions: []string{"start", "end", "denied"}}
	for _, a := range d.Actions {
		if c.Query("action") == a {
			d.Action = a
		}
	}
	_, total, err := app.db.Audit(ctx, d.Action, 0, 0)
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	d.Pager = newPager(c, total, eventsPerPage)
	if d.Events, _, err = app.db.Audit(ctx, d.Action, d.Pager.offset(eventsPerPage), eventsPerPage); err != nil {
		app.dbFailed(c, err)
		return
	}
	app.render(c, http.StatusOK, "audit", Page{Title: "Audit trail", Section: "audit", Data: d})
}

// dbFailed answers a failed database query.
func (app *App) dbFailed(c *gin.Context, err error) {
	app.log.Error("database query failed", "path", c.Request.URL.Path, "err", err)
	app.renderError(c, http.StatusInternalServerError, "The user database is unavailable, try again.")
}

// targetUser loads the user named by the :id parameter, answering 404 or
// 500 itself when it cannot.
func (app *App) targetUser(c *gin.Context) (*User, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		app.renderError(c, http.StatusNotFound, "There is no such user.")
		return nil, false
	}
	u, err := app.db.UserByID(c.Request.Context(), id)
	if errors.Is(err, errNoUser) {
		app.renderError(c, http.StatusNotFound, "There is no such user.")
		return nil, false
	}
	if err != nil {
		app.dbFailed(c, err)
		return nil, false
	}
	return u, true
}

// flashAndRedirect adds a flash message and answers 303 to dest.
func (app *App) flashAndRedirect(c *gin.Context, msg, dest string) {
	s := sessions.Default(c)
	s.AddFlash(msg)
	if err := s.Save(); err != nil {
		app.log.Error("saving the session", "err", err)
		app.renderError(c, http.StatusServiceUnavailable, storeUnavailable)
		return
	}
	c.Redirect(http.StatusSeeOther, dest)
}

// setActive enables or disables a user. A disabled user cannot sign in, and
// the plugin's revalidation ends any impersonation of them, or by them, on
// its next request.
func (app *App) setActive(c *gin.Context) {
	u, ok := app.targetUser(c)
	if !ok {
		return
	}
	dest := "/admin/users/" + u.IDString()
	v, _ := viewerOf(c)
	if v.ID == u.ID {
		app.flashAndRedirect(c, "You cannot disable your own account.", dest)
		return
	}
	active := c.PostForm("active") == "1"
	if err := app.db.SetActive(c.Request.Context(), u.ID, active); err != nil {
		app.dbFailed(c, err)
		return
	}
	msg := u.Username + " is disabled: they cannot sign in, and impersonations of them or by them end."
	if active {
		msg = u.Username + " is active again."
	}
	app.log.Info("user changed", "by", v.Username, "user", u.Username, "active", active)
	app.flashAndRedirect(c, msg, dest)
}

// endImpersonations ends every impersonation the user has started, on every
// instance sharing the database.
func (app *App) endImpersonations(c *gin.Context) {
	u, ok := app.targetUser(c)
	if !ok {
		return
	}
	if err := app.plugin.EndAll(c.Request.Context(), u.IDString()); err != nil {
		app.dbFailed(c, err)
		return
	}
	app.flashAndRedirect(c, "Every impersonation started by "+u.Username+" so far has been ended.", "/admin/users/"+u.IDString())
}

type accountData struct {
	Error string
}

// minPasswordLength is the shortest new password accepted; the seeded
// demo passwords are shorter, which is fine for a demo.
const minPasswordLength = 8

func (app *App) accountPage(c *gin.Context) {
	app.render(c, http.StatusOK, "account", Page{Title: "My account", Section: "account"})
}

// changePassword sets a new password for the signed-in user and replaces
// the session.
func (app *App) changePassword(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 16<<10)
	v, _ := viewerOf(c)
	fail := func(status int, msg string) {
		app.render(c, status, "account", Page{Title: "My account", Section: "account", Data: accountData{Error: msg}})
	}
	current, next := c.PostForm("current"), c.PostForm("new")
	switch {
	case bcrypt.CompareHashAndPassword(v.hash, []byte(current)) != nil:
		fail(http.StatusUnprocessableEntity, "The current password is wrong.")
		return
	case len(next) < minPasswordLength || len(next) > 72:
		fail(http.StatusUnprocessableEntity, "The new password must have 8 to 72 bytes.")
		return
	case next != c.PostForm("confirm"):
		fail(http.StatusUnprocessableEntity, "The two new passwords differ.")
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(next), app.cfg.BcryptCost)
	if err != nil {
		fail(http.StatusUnprocessableEntity, "The new password cannot be used.")
		return
	}
	if err := app.db.SetPassword(c.Request.Context(), v.ID, hash); err != nil {
		app.dbFailed(c, err)
		return
	}
	values := map[any]any{userIDKey: v.IDString(), flashKey: []any{"Your password has been changed."}}
	if err := renewSession(c, values); err != nil {
		app.log.Error("saving the session", "err", err)
		app.renderError(c, http.StatusServiceUnavailable, storeUnavailable)
		return
	}
	c.Redirect(http.StatusSeeOther, "/account")
}
