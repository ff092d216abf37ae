package loginas

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// maxFormBytes caps the body of a POST to the plugin's routes.
const maxFormBytes = 64 << 10

// request is one request that the plugin answers or refuses, resolved once:
// its session, its language, who is signed in and, as far as the checks
// have got, the actor, the target and the reason.
type request struct {
	p  *Plugin
	c  *gin.Context
	s  sessions.Session
	gs *gsessions.Session
	// user is the value under Options.SessionKey; nil when nobody is
	// signed in.
	user any
	// fields holds a JSON body's string fields; a form's are in
	// c.Request.PostForm.
	fields map[string]string
	// checked is set once the origin and token checks passed: a browser's
	// refusal then goes back to its page with a flash message.
	checked bool
	imp     *Impersonation
	actor   *User
	target  *User
	reason  string
	msg     *Messages
}

// newRequest resolves the request once; while impersonating, its actor and
// target are the impersonation's, so that every refusal names both.
func (p *Plugin) newRequest(c *gin.Context, s sessions.Session, gs *gsessions.Session) *request {
	r := &request{p: p, c: c, s: s, gs: gs, user: s.Get(p.sessionKey), imp: current(c)}
	if r.imp != nil {
		r.actor, r.target = &r.imp.Actor, &r.imp.Target
	}
	return r
}

// messages returns the texts in the request's language, negotiated once.
func (r *request) messages() *Messages {
	if r.msg == nil {
		r.msg = r.p.messages(r.c)
	}
	return r.msg
}

// field returns a field of the body: from a form, or a JSON object.
func (r *request) field(name string) string {
	if r.fields != nil {
		return r.fields[name]
	}
	return r.c.Request.PostFormValue(name)
}

// routeRequest runs the checks every state-changing route of the plugin
// makes, in order: the middleware ran, the session loaded, the request is
// same-origin, its body can be read, and it carries the session's CSRF
// token. A session without a user has no token; anonymousOK lets such a
// request through for routes where nobody signed in changes nothing. It
// answers the request itself and returns false when a check fails.
func (p *Plugin) routeRequest(c *gin.Context, anonymousOK bool) (*request, bool) {
	r, ok := p.readRequest(c)
	if !ok {
		return nil, false
	}
	if err := p.origins.Check(c.Request); err != nil {
		r.refuse(CauseForbidden, "cross-origin request: "+err.Error())
		return nil, false
	}
	if cause, detail := r.readBody(); cause != "" {
		r.refuse(cause, detail)
		return nil, false
	}
	if r.user == nil && anonymousOK {
		return r, true
	}
	if problem := p.tokenProblem(r); problem != "" {
		r.refuse(CauseForbidden, problem)
		return nil, false
	}
	r.checked = true
	return r, true
}

// readBody parses a URL-encoded or multipart form, or a JSON object whose
// fields are strings. A body of any other media type is refused, so that no
// field is silently dropped. It returns the cause of a refusal and why.
func (r *request) readBody() (Cause, string) {
	req := r.c.Request
	req.Body = http.MaxBytesReader(r.c.Writer, req.Body, maxFormBytes)
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	var err error
	switch mediaType {
	case "application/x-www-form-urlencoded":
		err = req.ParseForm()
	case "multipart/form-data":
		err = req.ParseMultipartForm(maxFormBytes)
	case "application/json":
		r.fields, err = decodeFields(req.Body)
	default:
		if n, _ := req.Body.Read(make([]byte, 1)); n > 0 {
			return CauseUnsupportedMedia, "body of media type " + truncate(mediaType, 100)
		}
		req.PostForm = url.Values{}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return CauseTooLarge, err.Error()
	case err != nil:
		return CauseBadRequest, err.Error()
	}
	return "", ""
}

// decodeFields reads a JSON object whose values are strings (other fields
// are refused) from body; an empty body has no fields.
func decodeFields(body io.Reader) (map[string]string, error) {
	fields := map[string]string{}
	dec := json.NewDecoder(body)
	err := dec.Decode(&fields)
	if errors.Is(err, io.EOF) {
		return fields, nil
	}
	if err != nil {
		return nil, errors.New("the JSON body must be an object of strings, such as {\"reason\": \"ticket 42\"}: " + err.Error())
	}
	if dec.More() {
		return nil, errors.New("the JSON body must hold one object")
	}
	return fields, nil
}

// refusals is the one table of the causes of refusals: the status each
// answers, and its text in the request's language. A cause the table lacks
// (an app's own, through Refuse) answers 403 with the generic text.
var refusals = map[Cause]struct {
	status int
	text   func(*Messages) string
}{
	CauseNotSignedIn:      {http.StatusUnauthorized, func(m *Messages) string { return m.NotSignedIn }},
	CauseForbidden:        {http.StatusForbidden, func(m *Messages) string { return m.Forbidden }},
	CauseNotPermitted:     {http.StatusForbidden, func(m *Messages) string { return m.NotPermitted }},
	CauseNested:           {http.StatusConflict, func(m *Messages) string { return m.AlreadyImpersonating }},
	CauseBadID:            {http.StatusBadRequest, func(m *Messages) string { return m.BadID }},
	CauseNotFound:         {http.StatusNotFound, func(m *Messages) string { return m.NotFound }},
	CauseSelf:             {http.StatusUnprocessableEntity, func(m *Messages) string { return m.Self }},
	CauseSuperuser:        {http.StatusForbidden, func(m *Messages) string { return m.SuperuserTarget }},
	CauseInactive:         {http.StatusForbidden, func(m *Messages) string { return m.InactiveTarget }},
	CauseHook:             {http.StatusForbidden, func(m *Messages) string { return m.NotPermitted }},
	CauseNoConsent:        {http.StatusForbidden, func(m *Messages) string { return m.NoConsent }},
	CauseReasonRequired:   {http.StatusUnprocessableEntity, func(m *Messages) string { return m.ReasonRequired }},
	CauseReasonTooLong:    {http.StatusUnprocessableEntity, func(m *Messages) string { return m.ReasonTooLong }},
	CauseReasonInvalid:    {http.StatusUnprocessableEntity, func(m *Messages) string { return m.ReasonInvalid }},
	CauseBadRequest:       {http.StatusBadRequest, func(m *Messages) string { return m.BadRequest }},
	CauseTooLarge:         {http.StatusRequestEntityTooLarge, func(m *Messages) string { return m.TooLarge }},
	CauseUnsupportedMedia: {http.StatusUnsupportedMediaType, func(m *Messages) string { return m.UnsupportedMedia }},
	CauseMethod:           {http.StatusMethodNotAllowed, func(m *Messages) string { return m.MethodNotAllowed }},
	CauseGuarded:          {http.StatusForbidden, func(m *Messages) string { return m.Guarded }},
	CauseReadOnly:         {http.StatusForbidden, func(m *Messages) string { return m.ReadOnly }},
	CauseNoEntry:          {http.StatusNotFound, func(m *Messages) string { return m.NoEntry }},
}

// refuse answers a refused request with the catalog's text for cause. why
// is the developer's explanation, for the debug log and the audit detail.
func (r *request) refuse(cause Cause, why string) {
	r.refuseWith(&Refusal{Cause: cause}, why)
}

// refuseWith is the one way a refusal is answered. It is audited as denied
// (without a signed-in user, only counted in the log: such requests must not
// grow the audit trail); then a browser whose form passed the origin and
// token checks goes back to its page with a flash message, an anonymous
// browser goes to Options.LoginURL when set, and every other answer is the
// cause's status through Options.ErrorHandler.
func (r *request) refuseWith(ref *Refusal, why string) {
	p, c := r.p, r.c
	kind, known := refusals[ref.Cause]
	if !known {
		kind = refusals[CauseHook]
	}
	status := kind.status
	if ref.Message == "" {
		ref.Message = fill(kind.text(r.messages()), r.targetName(), "")
	}
	p.opts.Logger.Debug("loginas: request refused", "status", status, "cause", ref.Cause, "why", why, "path", c.Request.URL.Path)
	if r.user == nil {
		p.quiet.count(string(ref.Cause))
	} else {
		e := p.event(ActionDenied, ref.Cause, r.actor, r.target)
		if r.actor == nil {
			e.ActorID = printableID(sessionID(r.user)) // unverified: the request may be forged
		}
		if r.imp != nil {
			e.ImpersonationID = r.imp.ID
		}
		e.Reason, e.Detail = r.reason, ref.Message
		if why != "" && ref.Cause == CauseForbidden {
			e.Detail = why
		}
		_ = p.audit(c, e)
	}
	switch {
	case r.checked && r.user != nil && !WantsJSON(c):
		r.s.AddFlash(ref.Message, p.opts.FlashKey)
		if err := r.s.Save(); err != nil {
			p.fail(c, errors.Join(ErrSessionStore, err))
			return
		}
		c.Redirect(http.StatusSeeOther, p.back(c))
		c.Abort()
	case ref.Cause == CauseNotSignedIn && p.opts.LoginURL != "" && !WantsJSON(c):
		c.Redirect(http.StatusSeeOther, p.opts.LoginURL)
		c.Abort()
	default:
		p.opts.ErrorHandler(c, status, ref)
		c.Abort()
	}
}

// targetName is the display name of the target as far as it is known, for
// the messages that name it.
func (r *request) targetName() string {
	if r.target != nil {
		return r.p.name(*r.target)
	}
	return ""
}

// readRequest starts a request of the plugin (loadRequest), answering a
// failure. GET routes need no more.
func (p *Plugin) readRequest(c *gin.Context) (*request, bool) {
	r, err := p.loadRequest(c)
	if err != nil {
		p.fail(c, err)
		return nil, false
	}
	return r, true
}

// loadRequest resolves a request the middleware ran on, with its loaded
// session.
func (p *Plugin) loadRequest(c *gin.Context) (*request, error) {
	if _, ran := c.Get(ContextKey); !ran {
		return nil, errMiddlewareMissing
	}
	s, gs, err := requestSession(c)
	if err != nil {
		return nil, err
	}
	return p.newRequest(c, s, gs), nil
}

// fail answers a failure of a store, the audit sink or the set-up with a
// 5xx, logging the cause.
func (p *Plugin) fail(c *gin.Context, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrSessionStore) || errors.Is(err, ErrStore) {
		status = http.StatusServiceUnavailable
	}
	p.opts.Logger.Error("loginas: request failed", "status", status, "path", c.Request.URL.Path, "err", err)
	p.opts.ErrorHandler(c, status, err)
	c.Abort()
}

// next returns the body's next value when it is a local path, else def.
func (r *request) next(def string) string {
	if n := r.field("next"); IsLocalURL(n) {
		return n
	}
	return def
}

// back returns the Referer's path when it is a page of this site, else
// RefusalRedirectURL.
func (p *Plugin) back(c *gin.Context) string {
	ref, err := url.Parse(c.Request.Referer())
	if err != nil || ref.Host != c.Request.Host || (ref.Scheme != "http" && ref.Scheme != "https") || ref.User != nil {
		return p.opts.RefusalRedirectURL
	}
	if u := ref.RequestURI(); IsLocalURL(u) {
		return u
	}
	return p.opts.RefusalRedirectURL
}

// answer writes a success: JSON for clients that want it, else a flash
// message (when there is one) and a 303 to dest.
func (r *request) answer(body gin.H, flash, dest string) {
	if WantsJSON(r.c) {
		r.c.JSON(http.StatusOK, body)
		return
	}
	if flash != "" {
		r.s.AddFlash(flash, r.p.opts.FlashKey)
		if err := r.s.Save(); err != nil {
			r.p.fail(r.c, errors.Join(ErrSessionStore, err))
			return
		}
	}
	r.c.Redirect(http.StatusSeeOther, dest)
}

// WantsJSON reports whether the client asked for JSON rather than a page:
// its Accept header names application/json and not text/html. The plugin
// answers such clients with JSON bodies and status codes, and everyone else
// with redirects, flash messages and pages.
func WantsJSON(c *gin.Context) bool {
	accept := c.GetHeader("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// printableID returns id for the audit trail when it is a valid ID, else a
// marker: malformed input is not copied into logs.
func printableID(id string) string {
	if ParseID(id) != nil {
		return "(malformed)"
	}
	return id
}

// rateLog counts the refusals of requests without a signed-in user and
// tells Logger about them at most once per period, so that anonymous
// traffic can neither grow the audit trail nor flood the log.
type rateLog struct {
	logger *slog.Logger
	period time.Duration
	mu     sync.Mutex
	next   time.Time
	counts map[string]int
}

func newRateLog(logger *slog.Logger, period time.Duration) *rateLog {
	return &rateLog{logger: logger, period: period, counts: map[string]int{}}
}

// count adds one refusal of the given cause, and logs the counts when the
// period since the last line has passed.
func (l *rateLog) count(cause string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[cause]++
	now := time.Now()
	if now.Before(l.next) {
		return
	}
	attrs := make([]any, 0, 2*len(l.counts))
	for k, n := range l.counts {
		attrs = append(attrs, k, n)
	}
	l.logger.Warn("loginas: refused requests without a signed-in user (counted, not audited)", slog.Group("causes", attrs...))
	clear(l.counts)
	l.next = now.Add(l.period)
}
