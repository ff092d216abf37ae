package main

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/sqlstore"
)

// The admin pages. The lists page by key ("next page after this ID"), never
// by count and offset, so that every page costs the same however long the
// audit trail or the user table grows.

// historyOnUserPage is how many of a user's audit events their admin page
// shows; the audit trail page has them all.
const historyOnUserPage = 5

// eventRow is an audit event as the events table shows it: every field
// ready to print, so that the template calls no function and walks no
// embedded struct for each of a page's rows.
type eventRow struct {
	Time, ISO                                   string
	Action, Cause                               string
	ActorID, ActorName, TargetID, TargetName    string
	Reason, Detail, IP, UserAgent, Method, Path string
	// Impersonation is the ID the events of one impersonation share;
	// ImpersonationShort its first eight characters, for the table.
	Impersonation, ImpersonationShort string
}

// eventRows turns stored events into rows of the events table.
func eventRows(events []sqlstore.StoredEvent) []eventRow {
	rows := make([]eventRow, len(events))
	for i, e := range events {
		rows[i] = eventRow{
			Time: formatTime(e.Time), ISO: e.Time.UTC().Format(time.RFC3339),
			Action: string(e.Action), Cause: string(e.Cause),
			ActorID: e.ActorID, ActorName: e.ActorName, TargetID: e.TargetID, TargetName: e.TargetName,
			Reason: e.Reason, Detail: e.Detail, IP: e.ClientIP, UserAgent: e.UserAgent, Method: e.Method, Path: e.Path,
			Impersonation: e.ImpersonationID, ImpersonationShort: e.ImpersonationID[:min(8, len(e.ImpersonationID))],
		}
	}
	return rows
}

type dashboardData struct {
	Counts        UserCounts
	StartsLastDay int
	// Live is the live impersonations' list, for the count; it is empty
	// (not Visible) for the staff, whom CanManage does not allow to see it.
	Live   loginas.LiveList
	Recent []eventRow
}

func (app *App) dashboard(c *gin.Context) {
	ctx := c.Request.Context()
	var d dashboardData
	var err error
	if d.Counts, err = app.db.CountUsers(ctx); err != nil {
		app.dbFailed(c, err)
		return
	}
	if d.StartsLastDay, err = app.db.Plugin.CountSince(ctx, loginas.ActionStart, app.cfg.Clock().Add(-24*time.Hour)); err != nil {
		app.dbFailed(c, err)
		return
	}
	recent, err := app.db.Plugin.Events(ctx, sqlstore.EventQuery{Limit: 8})
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	d.Recent, d.Live = eventRows(recent), loginas.LiveFor(c)
	app.render(c, http.StatusOK, "dashboard", Page{Title: "Dashboard", Section: "dashboard", Data: d})
}

type userListData struct {
	Query string
	Users []*User
	// More links to the next page, or is empty on the last one.
	More string
}

func (app *App) userList(c *gin.Context) {
	q, ok := cleanText(c.Query("q"), 150) // text PostgreSQL would refuse searches for nothing
	if !ok {
		q = ""
	}
	after, _ := strconv.ParseInt(c.Query("after"), 10, 64)
	users, err := app.db.Users(c.Request.Context(), q, max(after, 0), usersPerPage+1)
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	d := userListData{Query: q, Users: users}
	if len(users) > usersPerPage {
		d.Users = users[:usersPerPage]
		d.More = nextPage(c, "after", d.Users[usersPerPage-1].ID)
	}
	app.render(c, http.StatusOK, "users", Page{Title: "Users", Section: "users", Data: d})
}

// nextPage links to the current page with its key parameter set to key.
func nextPage(c *gin.Context, param string, key int64) string {
	q := c.Request.URL.Query()
	q.Set(param, strconv.FormatInt(key, 10))
	return c.Request.URL.Path + "?" + q.Encode()
}

type userPageData struct {
	User   *User
	Button loginas.Button
	// NoButton says why there is no login-as button, when there is none.
	NoButton string
	History  []eventRow
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
	d := userPageData{User: u, Button: loginas.ButtonFor(c, pluginUser(u))}
	if v, ok := viewerOf(c); ok {
		d.CanManage = v.IsSuperuser && !loginas.IsImpersonated(c)
		d.IsSelf = v.ID == u.ID
	}
	if !d.Button.Visible {
		d.NoButton = whyNoButton(d.Button.Cause)
	}
	history, err := app.db.Plugin.Events(c.Request.Context(), sqlstore.EventQuery{UserID: u.IDString(), Limit: historyOnUserPage})
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	d.History = eventRows(history)
	app.render(c, http.StatusOK, "user", Page{Title: u.Username, Section: "users", Data: d})
}

// whyNoButton says, in the app's words, why the plugin hid the button.
func whyNoButton(cause loginas.Cause) string {
	switch cause {
	case loginas.CauseNested:
		return "You are already logged in as another user."
	case loginas.CauseNotPermitted, loginas.CauseNotSignedIn:
		return "Only superusers may log in as other users."
	case loginas.CauseSelf:
		return "This is your own account."
	case loginas.CauseInactive:
		return "Disabled users cannot be logged in as."
	case loginas.CauseSuperuser:
		return "Superusers cannot be logged in as."
	case loginas.CauseNoConsent:
		return "This user has not allowed access to their account."
	}
	return "You may not log in as this user."
}

type auditData struct {
	Action  string
	Actions []string
	Events  []eventRow
	// More links to the older events, or is empty on the last page.
	More string
}

func (app *App) auditPage(c *gin.Context) {
	d := auditData{Actions: []string{"start", "end", "denied", "consent"}}
	if a := c.Query("action"); slices.Contains(d.Actions, a) {
		d.Action = a
	}
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64)
	events, err := app.db.Plugin.Events(c.Request.Context(), sqlstore.EventQuery{
		Action: loginas.Action(d.Action), Before: before, Limit: eventsPerPage + 1,
	})
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	if len(events) > eventsPerPage {
		d.More = nextPage(c, "before", events[eventsPerPage-1].ID)
		events = events[:eventsPerPage]
	}
	d.Events = eventRows(events)
	app.render(c, http.StatusOK, "audit", Page{Title: "Audit trail", Section: "audit", Data: d})
}

// livePage lists the impersonations live now, on every instance, with an
// End button each: the plugin's partial, for whoever CanManage allows.
func (app *App) livePage(c *gin.Context) {
	app.render(c, http.StatusOK, "live", Page{Title: "Live impersonations", Section: "live", Data: loginas.LiveFor(c)})
}

// dbFailed answers a failed database query.
func (app *App) dbFailed(c *gin.Context, err error) {
	app.log.Error("database query failed", "path", c.Request.URL.Path, "err", err)
	app.renderError(c, http.StatusInternalServerError, "The user database is unavailable, try again.")
}

// sessionFailed answers a session that could not be saved.
func (app *App) sessionFailed(c *gin.Context, err error) {
	app.log.Error("saving the session", "path", c.Request.URL.Path, "err", err)
	app.renderError(c, http.StatusServiceUnavailable, storeUnavailable)
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
		app.sessionFailed(c, err)
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
	var active bool
	switch c.PostForm("active") {
	case "1":
		active = true
	case "0":
	default:
		app.renderError(c, http.StatusBadRequest, "The field active must be 0 or 1.")
		return
	}
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
// instance sharing the Store.
func (app *App) endImpersonations(c *gin.Context) {
	u, ok := app.targetUser(c)
	if !ok {
		return
	}
	if err := app.plugin.EndAll(c, u.IDString()); err != nil {
		app.dbFailed(c, err)
		return
	}
	app.flashAndRedirect(c, "Every impersonation started by "+u.Username+" so far has been ended.", "/admin/users/"+u.IDString())
}

// loginRedirect sends a visitor who is not signed in to the login page,
// coming back here afterwards.
func loginRedirect(c *gin.Context) {
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
	c.Abort()
}
