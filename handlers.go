package loginas

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// maxFormBytes caps the body of a POST to the plugin's routes.
const maxFormBytes = 64 << 10

// ErrUserStore means Options.FindUser failed for a reason other than
// ErrUserNotFound.
var ErrUserStore = errors.New("loginas: user lookup failed")

// ErrAudit means the audit sink failed to record the start of an
// impersonation, so the switch was not made.
var ErrAudit = errors.New("loginas: audit sink failed")

// errMiddlewareMissing means a handler ran without the plugin's middleware.
var errMiddlewareMissing = errors.New("loginas: the loginas middleware did not run on this request: use Register, or router.Use(p.Middleware()) before the routes")

// LoginAsHandler returns the handler of POST {Prefix}/:id, which Register
// mounts.
func (p *Plugin) LoginAsHandler() gin.HandlerFunc { return p.loginAs }

// LogoutHandler returns the handler of POST {Prefix}/logout, which Register
// mounts.
func (p *Plugin) LogoutHandler() gin.HandlerFunc { return p.logout }

func (p *Plugin) loginAs(c *gin.Context) {
	s, gs, ok := p.routeSession(c)
	if !ok {
		return
	}
	msg := p.messages(c)
	userValue := s.Get(p.sessionKey)
	if userValue == nil {
		p.refuseAnonymous(c)
		return
	}
	if _, nested := c.Get(impersonationKey{}); nested {
		imp, _ := Current(c)
		p.refuse(c, s, http.StatusConflict, &Refusal{Cause: CauseNested, Message: msg.AlreadyImpersonating}, &imp.Actor, &imp.Target, "")
		return
	}
	actor, err := p.findUser(c, sessionID(userValue))
	if errors.Is(err, ErrUserNotFound) || errors.Is(err, ErrBadID) {
		p.refuseAnonymous(c)
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	if !p.mayImpersonate(c, actor) {
		p.refuse(c, s, http.StatusForbidden, &Refusal{Cause: CauseNotPermitted, Message: msg.NotPermitted}, &actor, nil, "")
		return
	}
	target, err := p.findUser(c, c.Param("id"))
	switch {
	case errors.Is(err, ErrBadID):
		p.refuse(c, s, http.StatusBadRequest, &Refusal{Cause: CauseBadID, Message: msg.BadID}, &actor, &User{ID: printableID(c.Param("id"))}, "")
		return
	case errors.Is(err, ErrUserNotFound):
		p.refuse(c, s, http.StatusNotFound, &Refusal{Cause: CauseNotFound, Message: msg.NotFound}, &actor, &User{ID: c.Param("id")}, "")
		return
	case err != nil:
		p.fail(c, err)
		return
	}
	if r := p.pairRule(c, actor, target); r != nil {
		status := http.StatusForbidden
		if r.Cause == CauseSelf {
			status = http.StatusUnprocessableEntity
		}
		p.refuse(c, s, status, r, &actor, &target, "")
		return
	}
	reason, problem := cleanReason(c.Request.PostFormValue("reason"), p.opts.MaxReasonLength, p.opts.ReasonRequired)
	if problem != reasonOK {
		p.refuse(c, s, http.StatusUnprocessableEntity, problem.refusal(msg), &actor, &target, "")
		return
	}

	imp, err := p.start(c, gs, actor, target, reason)
	if err != nil {
		p.fail(c, err)
		return
	}
	if wantsJSON(c.Request) {
		c.JSON(http.StatusOK, p.stateJSON(imp))
		return
	}
	c.Redirect(http.StatusSeeOther, p.next(c, p.opts.RedirectURL))
}

// start switches the session to target, all or nothing, and records it.
func (p *Plugin) start(c *gin.Context, gs *gsessions.Session, actor, target User, reason string) (*Impersonation, error) {
	now := p.opts.Clock()
	limit := p.opts.MaxDuration
	if p.opts.MaxDurationFor != nil {
		if d := p.opts.MaxDurationFor(c, actor); d > 0 {
			limit = d
		}
	}
	rec := record{ID: newRecordID(), ActorID: actor.ID, TargetID: target.ID, Started: now, Deadline: now.Add(limit)}
	stored, err := p.opts.StoreUserID(target.ID)
	if err != nil {
		return nil, errors.Join(ErrUserStore, err)
	}
	if p.opts.UpdateLastLogin != nil {
		if err := p.opts.UpdateLastLogin(c, target); err != nil {
			return nil, errors.Join(ErrUserStore, err)
		}
	}
	name := p.opts.DisplayName(target)
	values := p.newValues(fill(p.messages(c).Switched, name, p.opts.DisplayName(actor)))
	values[p.opts.SessionKey] = stored
	values[p.opts.RecordKey] = p.keys.encode(rec)

	started := p.eventFor(ActionStart, "", &actor, &target)
	started.ImpersonationID, started.Reason = rec.ID, reason
	if err := p.audit(c, started); err != nil {
		return nil, errors.Join(ErrAudit, err)
	}
	if err := replaceSession(c, gs, values); err != nil {
		failed := p.eventFor(ActionEnd, CauseFailed, &actor, &target)
		failed.ImpersonationID, failed.Detail = rec.ID, err.Error()
		_ = p.audit(c, failed)
		return nil, err
	}
	return &Impersonation{ID: rec.ID, Actor: actor, Target: target, Started: rec.Started, Deadline: rec.Deadline}, nil
}

func (p *Plugin) logout(c *gin.Context) {
	s, gs, ok := p.routeSession(c)
	if !ok {
		return
	}
	dest := p.next(c, p.opts.LogoutRedirectURL)
	if imp, ok := Current(c); ok {
		if err := p.restore(c, gs, imp); err != nil {
			p.fail(c, err)
			return
		}
		if wantsJSON(c.Request) {
			c.JSON(http.StatusOK, gin.H{"impersonating": false, "user": userJSON(p, imp.Actor), "redirect": dest})
			return
		}
		c.Redirect(http.StatusSeeOther, dest)
		return
	}
	if s.Get(p.sessionKey) != nil {
		if err := replaceSession(c, gs, p.newValues("")); err != nil {
			p.fail(c, err)
			return
		}
	}
	if wantsJSON(c.Request) {
		c.JSON(http.StatusOK, gin.H{"impersonating": false, "user": nil, "redirect": dest})
		return
	}
	c.Redirect(http.StatusSeeOther, dest)
}

// Restore returns an impersonating session to its actor, as the logout route
// does, for apps that keep their own logout handler: call it first, and if
// it returns true the actor is back and the handler should redirect instead
// of logging out. It returns false, changing nothing, when the request is
// not impersonated. The app's handler must carry its own CSRF protection.
func (p *Plugin) Restore(c *gin.Context) (bool, error) {
	if _, ran := c.Get(ContextKey); !ran {
		return false, errMiddlewareMissing
	}
	imp, ok := Current(c)
	if !ok {
		return false, nil
	}
	_, gs, err := requestSession(c)
	if err != nil {
		return false, err
	}
	if err := p.restore(c, gs, imp); err != nil {
		return false, err
	}
	return true, nil
}

// restore replaces the impersonated session with a fresh one for the actor.
func (p *Plugin) restore(c *gin.Context, gs *gsessions.Session, imp Impersonation) error {
	stored, err := p.opts.StoreUserID(imp.Actor.ID)
	if err != nil {
		return errors.Join(ErrUserStore, err)
	}
	if p.opts.UpdateLastLogin != nil {
		if err := p.opts.UpdateLastLogin(c, imp.Actor); err != nil {
			return errors.Join(ErrUserStore, err)
		}
	}
	values := p.newValues(fill(p.messages(c).Returned, p.opts.DisplayName(imp.Actor), p.opts.DisplayName(imp.Actor)))
	values[p.opts.SessionKey] = stored
	values[p.nonceKey] = newRecordID()
	if err := replaceSession(c, gs, values); err != nil {
		return err
	}
	p.rememberEnd(c, imp.ID, imp.Deadline)
	e := p.eventFor(ActionEnd, CauseLogout, &imp.Actor, &imp.Target)
	e.ImpersonationID = imp.ID
	_ = p.audit(c, e)
	c.Set(ContextKey, false)
	c.Delete(impersonationKey{})
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), impersonationKey{}, (*Impersonation)(nil)))
	c.Writer.Header().Del(HeaderImpersonatedUser)
	c.Writer.Header().Del(HeaderImpersonator)
	return nil
}

// routeSession runs the checks both routes share: the plugin's middleware
// ran, the body is small and readable, the request is same-origin and (for
// a signed-in session) carries the CSRF token. It answers the request itself
// and returns false when a check fails.
func (p *Plugin) routeSession(c *gin.Context) (sessions.Session, *gsessions.Session, bool) {
	if _, ran := c.Get(ContextKey); !ran {
		p.fail(c, errMiddlewareMissing)
		return nil, nil, false
	}
	s, gs, err := requestSession(c)
	if err != nil {
		p.fail(c, err)
		return nil, nil, false
	}
	msg := p.messages(c)
	// Refusals here name the session's user unverified: the request may be
	// forged.
	reject := func(status int, r *Refusal, detail string) {
		e := Event{Action: ActionDenied, Cause: r.Cause, ActorID: sessionID(s.Get(p.sessionKey)), Detail: detail}
		_ = p.audit(c, e)
		p.answer(c, status, r)
	}
	forbidden := &Refusal{Cause: CauseForbidden, Message: msg.Forbidden}
	if err := p.origins.Check(c.Request); err != nil {
		reject(http.StatusForbidden, forbidden, "cross-origin request")
		return nil, nil, false
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		status := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		reject(status, &Refusal{Cause: CauseBadRequest, Message: msg.BadRequest}, err.Error())
		return nil, nil, false
	}
	// An anonymous logout changes nothing, so it needs no token.
	anonymousLogout := s.Get(p.sessionKey) == nil && c.FullPath() == p.logoutURL
	if !anonymousLogout && !p.tokenValid(c, s, gs) {
		reject(http.StatusForbidden, forbidden, "CSRF token missing or wrong")
		return nil, nil, false
	}
	return s, gs, true
}

// refuse answers a refused switch: JSON clients get the status and
// {"error": message}; browsers get a flash message and a 303 back to the
// page they came from. Every refusal is audited.
func (p *Plugin) refuse(c *gin.Context, s sessions.Session, status int, r *Refusal, actor, target *User, reason string) {
	e := p.eventFor(ActionDenied, r.Cause, actor, target)
	e.Detail, e.Reason = r.Message, reason
	_ = p.audit(c, e)
	if wantsJSON(c.Request) {
		c.AbortWithStatusJSON(status, gin.H{"error": r.Message})
		return
	}
	s.AddFlash(r.Message, p.flashKey())
	if err := s.Save(); err != nil {
		p.fail(c, errors.Join(ErrSessionStore, err))
		return
	}
	c.Redirect(http.StatusSeeOther, p.back(c))
	c.Abort()
}

// refuseAnonymous answers a switch attempted without a signed-in user.
func (p *Plugin) refuseAnonymous(c *gin.Context) {
	_ = p.audit(c, Event{Action: ActionDenied, Cause: CauseNotSignedIn, TargetID: printableID(c.Param("id"))})
	if p.opts.LoginURL != "" && !wantsJSON(c.Request) {
		c.Redirect(http.StatusSeeOther, p.opts.LoginURL)
		c.Abort()
		return
	}
	p.answer(c, http.StatusUnauthorized, &Refusal{Cause: CauseNotSignedIn, Message: p.messages(c).NotSignedIn})
}

// deny answers a request refused while impersonating (Guard, ReadOnly)
// with a 403 and audits it.
func (p *Plugin) deny(c *gin.Context, status int, r *Refusal, imp *Impersonation) {
	e := p.eventFor(ActionDenied, r.Cause, &imp.Actor, &imp.Target)
	e.ImpersonationID, e.Detail = imp.ID, r.Message
	_ = p.audit(c, e)
	p.answer(c, status, r)
}

// answer writes a 4xx response through the error handler.
func (p *Plugin) answer(c *gin.Context, status int, r *Refusal) {
	p.opts.ErrorHandler(c, status, r)
	c.Abort()
}

// fail answers a failure of a store, the audit sink or the set-up with a
// 5xx, logging the cause.
func (p *Plugin) fail(c *gin.Context, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrSessionStore) {
		status = http.StatusServiceUnavailable
	}
	p.opts.Logger.Error("loginas: request failed", "status", status, "path", c.Request.URL.Path, "err", err)
	p.opts.ErrorHandler(c, status, err)
	c.Abort()
}

// findUser validates id and loads the user.
func (p *Plugin) findUser(c *gin.Context, id string) (User, error) {
	if err := ParseID(id); err != nil {
		return User{}, err
	}
	u, err := p.opts.FindUser(c, id)
	if err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return User{}, ErrUserNotFound
		}
		return User{}, errors.Join(ErrUserStore, err)
	}
	if u.ID != id {
		return User{}, errors.Join(ErrUserStore, errors.New("FindUser returned a user with another ID than asked for"))
	}
	return u, nil
}

// next returns the form's next value when it is a local path, else def.
func (p *Plugin) next(c *gin.Context, def string) string {
	if n := c.Request.PostFormValue("next"); IsLocalURL(n) {
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

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
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

func userJSON(p *Plugin, u User) gin.H {
	return gin.H{"id": u.ID, "name": p.opts.DisplayName(u)}
}

func (p *Plugin) stateJSON(imp *Impersonation) gin.H {
	return gin.H{
		"impersonating": true,
		"user":          userJSON(p, imp.Target),
		"impersonator":  userJSON(p, imp.Actor),
		"deadline":      imp.Deadline.UTC().Format(time.RFC3339),
	}
}
