package loginas

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// AccessPage is the data of the "loginas/access" partial (the person's
// access history) and of "loginas/consent".
type AccessPage struct {
	Items        []Access
	Title        string
	Empty        string
	WhoLabel     string
	StartedLabel string
	EndedLabel   string
	HowLabel     string
	ReasonLabel  string
	Consent      ConsentForm
}

// ConsentForm is the data of the "loginas/consent" partial: the person's
// grant and the form that changes it. Visible only with
// Options.RequireConsent, for a person signed in as themselves.
type ConsentForm struct {
	Visible       bool
	Granted       bool
	Until         time.Time
	Text          string // "Support may sign in to your account until …", or that it may not
	Action        string
	CSRFField     string
	CSRFToken     string
	Periods       []ConsentPeriod
	Title         string
	GrantLabel    string
	GrantButton   string
	WithdrawLabel string
}

// ConsentPeriod is one period a person may grant access for.
type ConsentPeriod struct {
	Value string // the form value, such as "24h0m0s"
	Label string // such as "24 hours"
}

// AccessFor returns the data for the "loginas/access" and
// "loginas/consent" partials: the impersonations of the signed-in user's
// account, newest first, and their consent. While impersonating it shows
// the target's history, as the target would see it, and no consent form.
func AccessFor(c *gin.Context) AccessPage {
	p := pluginOf(c)
	if p == nil {
		return AccessPage{}
	}
	msg := p.messages(c)
	page := AccessPage{
		Title: msg.HistoryTitle, Empty: msg.HistoryEmpty, WhoLabel: msg.WhoLabel, StartedLabel: msg.StartedLabel,
		EndedLabel: msg.EndedLabel, HowLabel: msg.HowLabel, ReasonLabel: msg.ReasonLabel,
	}
	me := p.accessUser(c)
	if me == "" {
		return page
	}
	entries, err := p.history(c, me, time.Time{})
	if err != nil {
		p.opts.Logger.Error("loginas: reading the access history", "user", me, "err", err)
	}
	page.Items = p.accessList(msg, entries, "", true)
	if p.opts.RequireConsent && !IsImpersonated(c) {
		page.Consent = p.consentForm(c, msg, me)
	}
	return page
}

// accessUser is the account whose access a request may read: the signed-in
// user's, or the target's while impersonating.
func (p *Plugin) accessUser(c *gin.Context) string {
	if imp := current(c); imp != nil {
		return imp.Target.ID
	}
	s, _, err := requestSession(c)
	if err != nil {
		return ""
	}
	return sessionID(s.Get(p.sessionKey))
}

// history returns the access history of an account from the History.
func (p *Plugin) history(c *gin.Context, id string, before time.Time) ([]Entry, error) {
	if p.opts.History == nil {
		return nil, nil
	}
	entries, err := p.opts.History.History(c, id, before, maxListed)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the access history: %w", ErrStore, err)
	}
	return entries, nil
}

func (p *Plugin) consentForm(c *gin.Context, msg *Messages, me string) ConsentForm {
	f := ConsentForm{
		Visible: true, Action: p.routes.consent, CSRFField: CSRFField, CSRFToken: Token(c),
		Title: msg.ConsentTitle, GrantLabel: msg.GrantLabel, GrantButton: msg.GrantButton, WithdrawLabel: msg.WithdrawLabel, Text: msg.ConsentNone,
	}
	until, err := p.liveConsent(c, me)
	if err != nil {
		p.opts.Logger.Error("loginas: reading a consent", "user", me, "err", err)
	}
	if !until.IsZero() {
		f.Granted, f.Until, f.Text = true, until, fillTime(msg.ConsentUntil, until)
	}
	for _, d := range p.opts.ConsentDurations {
		f.Periods = append(f.Periods, ConsentPeriod{Value: d.String(), Label: msg.period(d)})
	}
	return f
}

// LiveList is the data of the "loginas/live" partial: every live
// impersonation, each with an End button. Visible only for users CanManage
// allows, signed in as themselves.
type LiveList struct {
	Visible       bool
	Items         []Access
	Action        string // the URL that ends one impersonation
	CSRFField     string
	CSRFToken     string
	Title         string
	Empty         string
	WhoLabel      string
	AccountLabel  string
	StartedLabel  string
	DeadlineLabel string
	ReasonLabel   string
	EndLabel      string
}

// LiveFor returns the data for the "loginas/live" partial: every
// impersonation live now on any instance sharing the Store, newest first.
// The actors' real names are shown: this list is for the staff.
func LiveFor(c *gin.Context) LiveList {
	p := pluginOf(c)
	if p == nil {
		return LiveList{}
	}
	msg := p.messages(c)
	l := LiveList{
		Action: p.routes.end, CSRFField: CSRFField, Title: msg.LiveTitle, Empty: msg.LiveEmpty,
		WhoLabel: msg.WhoLabel, AccountLabel: msg.AccountLabel, StartedLabel: msg.StartedLabel,
		DeadlineLabel: msg.DeadlineLabel, ReasonLabel: msg.ReasonLabel, EndLabel: msg.EndLabel,
	}
	if !p.viewerManages(c) {
		return l
	}
	live, err := p.opts.Store.Live(c, "", p.opts.Clock(), maxListed)
	if err != nil {
		p.opts.Logger.Error("loginas: listing the live impersonations", "err", err)
	}
	l.Visible, l.CSRFToken = true, Token(c)
	l.Items = p.accessList(msg, live, "", false)
	return l
}

// viewerManages reports whether the user signed in as themselves may see
// and end every live impersonation.
func (p *Plugin) viewerManages(c *gin.Context) bool {
	id, ok := p.viewerID(c)
	if !ok {
		return false
	}
	u, err := p.findUser(c, id)
	return err == nil && p.mayManage(c, u)
}

// accessJSON answers GET {Prefix}/access: the signed-in user's access
// history (?before=RFC 3339 time pages back), the impersonations of their
// account going on now, and their consent.
func (p *Plugin) accessJSON(c *gin.Context) {
	r, ok := p.readRequest(c)
	if !ok {
		return
	}
	me := p.accessUser(c)
	if me == "" {
		r.refuse(CauseNotSignedIn, fmt.Sprintf("no value under Options.SessionKey %q", p.opts.SessionKey))
		return
	}
	var before time.Time
	if b := c.Query("before"); b != "" {
		var err error
		if before, err = time.Parse(time.RFC3339, b); err != nil {
			r.refuse(CauseBadRequest, "before must be an RFC 3339 time")
			return
		}
	}
	msg, now := r.messages(), p.opts.Clock()
	entries, err := p.history(c, me, before)
	if err != nil {
		p.fail(c, err)
		return
	}
	live, err := p.opts.Store.Live(c, me, now, maxListed)
	if err != nil {
		p.fail(c, fmt.Errorf("%w: listing live impersonations: %w", ErrStore, err))
		return
	}
	body := gin.H{"history": p.accessList(msg, entries, "", true), "in_use": p.accessList(msg, live, "", true)}
	if p.opts.RequireConsent {
		until, err := p.liveConsent(c, me)
		if err != nil {
			p.fail(c, err)
			return
		}
		body["consent"] = consentJSON(until)
	}
	c.JSON(http.StatusOK, body)
}

// liveJSON answers GET {Prefix}/live: every live impersonation, for users
// CanManage allows.
func (p *Plugin) liveJSON(c *gin.Context) {
	r, ok := p.readRequest(c)
	if !ok {
		return
	}
	me, ok := r.person()
	if !ok {
		return
	}
	if !p.mayManage(c, me) {
		r.refuse(CauseNotPermitted, "CanManage refused the user")
		return
	}
	live, err := p.opts.Store.Live(c, "", p.opts.Clock(), maxListed)
	if err != nil {
		p.fail(c, fmt.Errorf("%w: listing live impersonations: %w", ErrStore, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"live": p.accessList(r.messages(), live, "", false)})
}

// accessList turns entries into what a page or a JSON answer shows of them
// (access).
func (p *Plugin) accessList(msg *Messages, entries []Entry, text string, forPerson bool) []Access {
	out := make([]Access, 0, len(entries))
	for _, e := range entries {
		out = append(out, p.access(msg, e, text, forPerson))
	}
	return out
}
