package loginas

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFiles embed.FS

// Templates returns the embedded partials as a file system, for apps that
// parse templates with template.ParseFS themselves. Each file defines one
// template: "loginas/button", "loginas/banner" and "loginas/logout".
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFiles, "templates")
	return sub
}

// AddTemplates adds the embedded partials to t and returns it; with a nil t
// it returns a new set holding only them. A partial whose name t already
// defines is left out, so an app overrides one by defining it first; an app
// may also redefine one after AddTemplates, before the first execution.
func AddTemplates(t *template.Template) (*template.Template, error) {
	parsed, err := template.ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("loginas: parsing embedded templates: %w", err)
	}
	if t == nil {
		t = template.New("loginas")
	}
	for _, name := range []string{"loginas/button", "loginas/banner", "loginas/logout"} {
		if t.Lookup(name) != nil {
			continue
		}
		partial := parsed.Lookup(name)
		if partial == nil {
			return nil, errors.New("loginas: embedded template " + name + " is missing")
		}
		if _, err := t.AddParseTree(name, partial.Tree); err != nil {
			return nil, fmt.Errorf("loginas: adding template %s: %w", name, err)
		}
	}
	return t, nil
}

// Button is the data of the "loginas/button" partial.
type Button struct {
	// Visible is false when the viewer may not log in as the target; the
	// partial then renders nothing.
	Visible           bool
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

// Button returns the data for the "loginas/button" partial on target's page.
// It is visible only when the signed-in viewer, not impersonating, passes
// every rule for target; a failing user lookup hides it.
func (p *Plugin) Button(c *gin.Context, target User) Button {
	msg := p.messages(c)
	b := Button{
		Action:            p.LoginAsURL(target.ID),
		CSRFField:         DefaultCSRFField,
		Label:             msg.ButtonLabel,
		ReasonLabel:       msg.ReasonLabel,
		ReasonPlaceholder: msg.ReasonPlaceholder,
		ReasonRequired:    p.opts.ReasonRequired,
		MaxReasonLength:   p.opts.MaxReasonLength,
	}
	if IsImpersonated(c) || ParseID(target.ID) != nil {
		return b
	}
	s, _, err := requestSession(c)
	if err != nil {
		return b
	}
	viewerID := sessionID(s.Get(p.sessionKey))
	if viewerID == "" {
		return b
	}
	viewer, err := p.findUser(c, viewerID)
	if err != nil || p.allowed(c, viewer, target) != nil {
		return b
	}
	b.Visible = true
	b.CSRFToken = p.CSRFToken(c)
	return b
}

// Banner is the data of the "loginas/banner" and "loginas/logout" partials,
// and what a layout needs to know about the request.
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
}

// Banner returns the data for the "loginas/banner" and "loginas/logout"
// partials. Put it in every page's template data.
func (p *Plugin) Banner(c *gin.Context) Banner {
	msg := p.messages(c)
	b := Banner{
		Action:        p.logoutURL,
		CSRFField:     DefaultCSRFField,
		CSRFToken:     p.CSRFToken(c),
		TimeLeftLabel: msg.TimeLeft,
		ReturnLabel:   msg.ReturnLabel,
		LogoutLabel:   msg.LogoutLabel,
	}
	imp, ok := Current(c)
	if !ok {
		return b
	}
	b.IsImpersonated = true
	b.ActorName = p.opts.DisplayName(imp.Actor)
	b.TargetName = p.opts.DisplayName(imp.Target)
	b.Deadline = imp.Deadline
	b.DeadlineISO = imp.Deadline.UTC().Format(time.RFC3339)
	b.TimeLeft = formatTimeLeft(imp.TimeLeft(p.opts.Clock()))
	b.Text = fill(msg.BannerText, b.TargetName, b.ActorName)
	return b
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
