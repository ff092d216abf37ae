package loginas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"reflect"
	"runtime"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFiles embed.FS

// partialNames are the templates the embedded files define.
var partialNames = []string{"loginas/button", "loginas/banner", "loginas/logout", "loginas/access", "loginas/consent", "loginas/live"}

// Templates returns the embedded partials as a file system, for apps that
// parse templates with template.ParseFS themselves. Each file defines one
// of the templates "loginas/button", "loginas/banner", "loginas/logout",
// "loginas/access", "loginas/consent" and "loginas/live".
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFiles, "templates")
	return sub
}

// parsePartials parses the embedded partials.
func parsePartials() (*template.Template, error) {
	t, err := template.ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("loginas: parsing embedded templates: %w", err)
	}
	return t, nil
}

// AddTemplates adds the embedded partials to t, an app's html/template
// set, and returns it; with a nil t it returns a new set holding only them.
// A partial whose name t already defines is left out, so an app overrides
// one by defining it first; an app may also redefine one after AddTemplates,
// before the first execution. Apps that load templates with gin's
// LoadHTMLGlob, LoadHTMLFiles or LoadHTMLFS use FuncMap instead.
func AddTemplates(t *template.Template) (*template.Template, error) {
	parsed, err := parsePartials()
	if err != nil {
		return nil, err
	}
	if t == nil {
		t = template.New("loginas")
	}
	for _, name := range partialNames {
		if t.Lookup(name) != nil {
			continue
		}
		if _, err := t.AddParseTree(name, parsed.Lookup(name).Tree); err != nil {
			return nil, fmt.Errorf("loginas: adding template %s: %w", name, err)
		}
	}
	return t, nil
}

// FuncMap returns template functions that render the partials, for apps
// that load their templates with gin's loaders: call
// router.SetFuncMap(loginas.FuncMap()) before router.LoadHTMLGlob (the map
// may take the app's own functions too), then write
//
//	{{loginasBanner .Loginas}}        in the layout (the Banner from BannerFor)
//	{{loginasButton .Button}}         on the user page (the Button from ButtonFor)
//	{{loginasLogout .Loginas}}        a logout form outside the banner
//	{{loginasAccess .Access}}         the person's access history (AccessFor)
//	{{loginasConsent .Access.Consent}} the consent form (AccessFor)
//	{{loginasLive .Live}}             the live impersonations (LiveFor)
//
// Gin's debug-mode reloading keeps working, since gin parses with the
// FuncMap on every reload.
func FuncMap() template.FuncMap {
	parsed, err := parsePartials()
	render := func(name string) func(data any) (template.HTML, error) {
		return func(data any) (template.HTML, error) {
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			if err := parsed.ExecuteTemplate(&buf, name, data); err != nil {
				return "", err
			}
			return template.HTML(buf.String()), nil // #nosec: html/template escaped it
		}
	}
	return template.FuncMap{
		"loginasBanner":  render("loginas/banner"),
		"loginasButton":  render("loginas/button"),
		"loginasLogout":  render("loginas/logout"),
		"loginasAccess":  render("loginas/access"),
		"loginasConsent": render("loginas/consent"),
		"loginasLive":    render("loginas/live"),
	}
}

// Button is the data of the "loginas/button" partial.
type Button struct {
	// Visible is false when the viewer may not log in as the target; the
	// partial then renders nothing, and Cause says why (the debug log says
	// more).
	Visible           bool
	Cause             Cause
	Action            string // the login-as URL of the target
	CSRFField         string
	CSRFToken         string
	Next              string // optional local path to land on after the switch
	Label             string
	ReasonLabel       string
	ReasonPlaceholder string
	ReasonRequired    bool
	MaxReasonLength   int
}

// ButtonFor returns the data for the "loginas/button" partial on target's
// page. It is visible only when the signed-in viewer, not impersonating,
// passes every rule for target (consent included); otherwise Cause says
// why not, and Logger hears the details at debug level.
func ButtonFor(c *gin.Context, target User) Button {
	p := pluginOf(c)
	if p == nil {
		return Button{Cause: CauseFailed}
	}
	msg := p.messages(c)
	b := Button{
		Action:            p.LoginAsURL(target.ID),
		CSRFField:         CSRFField,
		Label:             msg.ButtonLabel,
		ReasonLabel:       msg.ReasonLabel,
		ReasonPlaceholder: msg.ReasonPlaceholder,
		ReasonRequired:    p.opts.ReasonRequired,
		MaxReasonLength:   p.opts.MaxReasonLength,
	}
	b.Cause, b.Visible = p.buttonCause(c, target), false
	if b.Cause == "" {
		b.Visible, b.CSRFToken = true, Token(c)
	}
	return b
}

// buttonCause returns why the viewer may not log in as target, or "".
func (p *Plugin) buttonCause(c *gin.Context, target User) Cause {
	hidden := func(cause Cause, why string, args ...any) Cause {
		p.opts.Logger.Debug("loginas: no button", "target", printableID(target.ID), "cause", cause, "why", fmt.Sprintf(why, args...))
		return cause
	}
	switch {
	case IsImpersonated(c):
		return hidden(CauseNested, "the viewer is impersonating someone")
	case ParseID(target.ID) != nil:
		return hidden(CauseBadID, "the target's ID is not a valid ID (see ParseID)")
	case p.routes.reserved(target.ID):
		return hidden(CauseBadID, "the target's ID %q is the path of the plugin's logout route", target.ID)
	}
	s, _, err := requestSession(c)
	if err != nil {
		return hidden(CauseFailed, "%v", err)
	}
	v := s.Get(p.sessionKey)
	switch {
	case v == nil:
		return hidden(CauseNotSignedIn, "no value under Options.SessionKey %q", p.opts.SessionKey)
	case sessionID(v) == "":
		return hidden(CauseNotSignedIn, "the value under Options.SessionKey %q is a %T, not a string or an integer", p.opts.SessionKey, v)
	}
	viewer, err := p.findUser(c, sessionID(v))
	switch {
	case errors.Is(err, ErrUserNotFound), errors.Is(err, ErrBadID):
		return hidden(CauseNotSignedIn, "FindUser found no user for the value under Options.SessionKey")
	case err != nil:
		return hidden(CauseFailed, "%v", err)
	case !viewer.Active:
		return hidden(CauseNotPermitted, "the viewer's User.Active is false")
	}
	if r := p.allowed(c, viewer, target); r != nil {
		return hidden(r.Cause, "a permission rule refused (CanImpersonate, the hard rules or CanLoginAs)")
	}
	if p.opts.RequireConsent {
		until, err := p.liveConsent(c, target.ID)
		if err != nil {
			return hidden(CauseFailed, "%v", err)
		}
		if until.IsZero() {
			return hidden(CauseNoConsent, "RequireConsent, and the target has no live grant")
		}
	}
	return ""
}

// Banner is the data of the "loginas/banner" and "loginas/logout"
// partials, and what a layout needs to know about the request. The banner
// partial already holds the return button (the logout partial): a layout
// that renders the banner needs no second one while impersonating.
type Banner struct {
	// IsImpersonated is the same flag as c.GetBool("is_impersonated").
	IsImpersonated bool
	ActorName      string
	TargetName     string
	Deadline       time.Time
	DeadlineISO    string // Deadline in RFC 3339, for a <time> element
	TimeLeft       string // rounded down to the minute, such as "42 min"
	Text           string // "You are signed in as alice. You are really admin."
	Action         string // the logout URL
	CSRFField      string
	CSRFToken      string
	TimeLeftLabel  string
	ReturnLabel    string
	LogoutLabel    string

	// For a person signed in as themselves: the impersonations of their
	// account going on now, each with an "End access" button, and the
	// notices of those that ended since their last page (each shown once).
	InUse          []Access
	Notices        []Access
	EndAction      string // the URL that ends one impersonation
	SinceLabel     string
	StartedLabel   string
	EndedLabel     string
	ReasonLabel    string
	EndAccessLabel string
}

// BannerFor returns the data for the "loginas/banner" and "loginas/logout"
// partials. Put it in every page's template data, before the body is
// written. For a person signed in as themselves it reads the Store and the
// History: their account in use now, and the notices after it was used.
func BannerFor(c *gin.Context) Banner {
	p := pluginOf(c)
	if p == nil {
		return Banner{}
	}
	msg := p.messages(c)
	b := Banner{
		Action:         p.routes.logout,
		CSRFField:      CSRFField,
		CSRFToken:      Token(c),
		TimeLeftLabel:  msg.TimeLeft,
		ReturnLabel:    msg.ReturnLabel,
		LogoutLabel:    msg.LogoutLabel,
		EndAction:      p.routes.end,
		SinceLabel:     msg.SinceLabel,
		StartedLabel:   msg.StartedLabel,
		EndedLabel:     msg.EndedLabel,
		ReasonLabel:    msg.ReasonLabel,
		EndAccessLabel: msg.EndAccessLabel,
	}
	if imp := current(c); imp != nil {
		b.IsImpersonated = true
		b.ActorName = p.name(imp.Actor)
		b.TargetName = p.name(imp.Target)
		b.Deadline = imp.Deadline
		b.DeadlineISO = imp.Deadline.UTC().Format(time.RFC3339)
		b.TimeLeft = formatTimeLeft(imp.TimeLeft(p.opts.Clock()))
		b.Text = fill(msg.BannerText, b.TargetName, b.ActorName)
		return b
	}
	if me, ok := p.viewerID(c); ok {
		b.InUse, b.Notices = p.personSide(c, msg, me)
	}
	return b
}

// viewerID returns the ID of the user signed in as themselves.
func (p *Plugin) viewerID(c *gin.Context) (string, bool) {
	s, _, err := requestSession(c)
	if err != nil || IsImpersonated(c) {
		return "", false
	}
	id := sessionID(s.Get(p.sessionKey))
	return id, id != ""
}

// personSide returns the impersonations of me's account going on now, and
// the notices of those that ended. A store that fails is logged and shows
// nothing: the page still renders.
func (p *Plugin) personSide(c *gin.Context, msg *Messages, me string) (inUse, notices []Access) {
	now := p.opts.Clock()
	live, err := p.opts.Store.Live(c, me, now, maxListed)
	if err != nil {
		p.opts.Logger.Error("loginas: listing the live impersonations of an account", "user", me, "err", err)
	}
	inUse = p.accessList(msg, live, msg.InUseText, true)
	if p.opts.SkipEndNotices || p.opts.History == nil {
		return inUse, nil
	}
	ended, err := p.opts.History.TakeNotices(c, me)
	if err != nil {
		p.opts.Logger.Error("loginas: taking the end notices of an account", "user", me, "err", err)
	}
	notices = p.accessList(msg, ended, msg.NoticeText, true)
	return inUse, notices
}

// maxListed caps the entries a page or a JSON answer lists.
const maxListed = 100

// Access is one impersonation as the partials and the JSON answers show
// it. To the person whose account was used, Actor is Options.ActorLabel
// when that is set.
type Access struct {
	ID           string    `json:"id"`
	Actor        string    `json:"actor"`
	ActorID      string    `json:"actor_id,omitempty"`
	Target       string    `json:"target"`
	TargetID     string    `json:"target_id"`
	Reason       string    `json:"reason"`
	Started      time.Time `json:"started"`
	Deadline     time.Time `json:"deadline"`
	Ended        time.Time `json:"ended,omitzero"`
	Cause        Cause     `json:"cause,omitempty"`
	Live         bool      `json:"live"`
	Text         string    `json:"text,omitempty"` // "admin is signed in to your account right now."
	How          string    `json:"how"`
	StartedText  string    `json:"-"`
	DeadlineText string    `json:"-"`
	EndedText    string    `json:"-"`
}

// access turns an entry into what a page shows of it. forPerson hides the
// actor behind ActorLabel; text, with {actor} and {name} filled, becomes
// Text. An entry past its deadline that nothing has marked ended yet (its
// session made no request since) is shown as it will be recorded: expired,
// at its deadline.
func (p *Plugin) access(msg *Messages, e Entry, text string, forPerson bool) Access {
	if e.Ended.IsZero() && !p.opts.Clock().Before(e.Deadline) {
		e.Ended, e.Cause = e.Deadline, CauseExpired
	}
	a := Access{
		ID: e.ID, Actor: e.ActorName, ActorID: e.ActorID, Target: e.TargetName, TargetID: e.TargetID,
		Reason: e.Reason, Started: e.Started, Deadline: e.Deadline, Ended: e.Ended, Cause: e.Cause,
		Live: e.Live(p.opts.Clock()), How: msg.how(e.Cause),
		StartedText: formatTime(e.Started), DeadlineText: formatTime(e.Deadline),
	}
	if !e.Ended.IsZero() {
		a.EndedText = formatTime(e.Ended)
	}
	if forPerson {
		a.Actor = p.shownActor(e)
		if p.opts.ActorLabel != "" {
			a.ActorID = ""
		}
	}
	a.Text = fill(text, a.Target, a.Actor)
	return a
}

// formatTimeLeft renders a duration as "1 h 05 min", "42 min" or "< 1 min".
func formatTimeLeft(d time.Duration) string {
	m := int(d / time.Minute)
	switch {
	case m < 1:
		return "< 1 min"
	case m < 60:
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d h %02d min", m/60, m%60)
}

// handlerName is the name gin gives a handler in c.HandlerNames.
func handlerName(h gin.HandlerFunc) string {
	return runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
}
