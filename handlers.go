package loginas

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
)

func (p *Plugin) loginAs(c *gin.Context) {
	r, ok := p.routeRequest(c, false)
	if !ok {
		return
	}
	if r.imp != nil {
		r.refuse(CauseNested, "the session is already an impersonation")
		return
	}
	actor, ok := r.signedInUser()
	if !ok {
		return
	}
	r.actor = &actor
	if !p.mayImpersonate(c, actor) {
		r.refuse(CauseNotPermitted, "CanImpersonate refused the actor, or the actor is not Active")
		return
	}
	id := c.Param("id")
	target, err := p.findUser(c, id)
	switch {
	case errors.Is(err, ErrBadID):
		r.target = &User{ID: printableID(id)}
		r.refuse(CauseBadID, "the :id is not a valid user ID (see ParseID)")
		return
	case errors.Is(err, ErrUserNotFound):
		r.target = &User{ID: id}
		r.refuse(CauseNotFound, "FindUser found no user")
		return
	case err != nil:
		p.fail(c, err)
		return
	}
	r.target = &target
	if ref := p.pairRule(c, actor, target); ref != nil {
		r.refuseWith(ref, "a rule about this actor and this target")
		return
	}
	reason, problem := cleanReason(r.field("reason"), p.opts.MaxReasonLength, p.opts.ReasonRequired)
	if problem != "" {
		r.refuse(problem, "the reason field")
		return
	}
	r.reason = reason
	var consentUntil time.Time
	if p.opts.RequireConsent {
		if consentUntil, err = p.liveConsent(c, target.ID); err != nil {
			p.fail(c, err)
			return
		}
		if consentUntil.IsZero() {
			r.refuse(CauseNoConsent, "RequireConsent: the target has no live grant")
			return
		}
	}
	imp, err := p.start(r, consentUntil)
	if err != nil {
		p.fail(c, err)
		return
	}
	dest := r.next(p.opts.RedirectURL)
	state := p.stateJSON(imp)
	state["redirect"] = dest
	r.answer(state, "", dest)
}

// start switches the session to r.target, all or nothing, and records it:
// the audit trail first, then the new session is saved, then the Store (and
// the History) learn of it, and only then is the old session retired and
// the new cookie sent. When a step fails, the steps before it are undone or
// marked failed, and UpdateLastLogin and Notify have not been called.
func (p *Plugin) start(r *request, consentUntil time.Time) (*Impersonation, error) {
	c, actor, target := r.c, *r.actor, *r.target
	now := p.opts.Clock()
	limit := p.opts.MaxDuration
	if p.opts.MaxDurationFor != nil {
		if d := p.opts.MaxDurationFor(c, actor); d > 0 {
			limit = d
		}
	}
	deadline := now.Add(limit)
	if !consentUntil.IsZero() && consentUntil.Before(deadline) {
		deadline = consentUntil
	}
	stored, err := p.storedID(r.user, target.ID)
	if err != nil {
		return nil, err
	}
	rec := record{ID: newRecordID(), ActorID: actor.ID, TargetID: target.ID, Started: now, Deadline: deadline}
	entry := Entry{
		ID: rec.ID, ActorID: actor.ID, ActorName: p.name(actor), TargetID: target.ID, TargetName: p.name(target),
		Reason: r.reason, Started: rec.Started, Deadline: rec.Deadline,
	}
	if err := p.audit(c, p.entryEvent(ActionStart, entry)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAudit, err)
	}
	// The record binds the new session's CSRF tokens: no other value.
	values := p.newValues(fill(r.messages().Switched, entry.TargetName, entry.ActorName))
	values[p.opts.SessionKey], values[p.opts.RecordKey] = stored, p.keys.encode(rec)
	sw, err := prepareSession(c, r.gs, values)
	if err != nil {
		p.abandon(c, entry, false, err)
		return nil, err
	}
	if err := p.opts.Store.Start(c, entry); err != nil {
		sw.abort()
		p.abandon(c, entry, false, err)
		return nil, fmt.Errorf("%w: recording the start: %w", ErrStore, err)
	}
	if err := p.record(c, entry); err != nil {
		sw.abort()
		p.abandon(c, entry, true, err)
		return nil, fmt.Errorf("%w: recording the start in the history: %w", ErrStore, err)
	}
	if err := sw.commit(true); err != nil {
		p.abandon(c, entry, true, err)
		return nil, err
	}
	p.entries.put(entry, now, p.opts.Clock())
	p.touch(c, target)
	p.notify(c, entry)
	return &Impersonation{ID: rec.ID, Actor: actor, Target: target, Started: rec.Started, Deadline: rec.Deadline, Reason: r.reason}, nil
}

// abandon records that a start which was audited could not be completed:
// its entry ends (when the Store has it) and the audit trail says why.
func (p *Plugin) abandon(c *gin.Context, e Entry, stored bool, cause error) {
	e.Ended, e.Cause = p.opts.Clock(), CauseFailed
	if stored {
		if _, err := p.opts.Store.End(c, Selector{ID: e.ID}, CauseFailed, e.Ended); err != nil {
			p.opts.Logger.Error("loginas: marking a failed start", "impersonation", e.ID, "err", err)
		}
		_ = p.record(c, e)
	}
	failed := p.entryEvent(ActionEnd, e)
	failed.Detail = cause.Error()
	_ = p.audit(c, failed)
}

func (p *Plugin) logout(c *gin.Context) {
	r, ok := p.routeRequest(c, true)
	if !ok {
		return
	}
	dest := r.next(p.opts.LogoutRedirectURL)
	switch {
	case r.imp != nil:
		if err := p.restore(r); err != nil {
			p.fail(c, err)
			return
		}
		r.answer(gin.H{"impersonating": false, "user": p.userJSON(r.imp.Actor), "redirect": dest}, "", dest)
	case r.user != nil:
		if err := replaceSession(c, r.gs, p.newValues("")); err != nil {
			p.fail(c, err)
			return
		}
		r.answer(gin.H{"impersonating": false, "user": nil, "redirect": dest}, "", dest)
	default:
		r.answer(gin.H{"impersonating": false, "user": nil, "redirect": dest}, "", dest)
	}
}

// Restore returns an impersonating session to its actor, as the logout
// route does, for apps that keep their own logout handler: call it first,
// and if it returns true the actor is back and the handler should redirect
// instead of logging out. It returns false, changing nothing, when the
// request is not impersonated. Mount the handler behind ReturnRoute, which
// gives it the plugin's cross-origin and CSRF checks and lets it through
// ReadOnly.
func (p *Plugin) Restore(c *gin.Context) (bool, error) {
	r, err := p.loadRequest(c)
	if err != nil || r.imp == nil {
		return false, err
	}
	if err := p.restore(r); err != nil {
		return false, err
	}
	return true, nil
}

// ReturnRoute returns the middleware to put in front of the app's own
// logout handler when it calls Restore: it makes the checks of the
// plugin's own routes (same origin, and the CSRF token of a signed-in
// session, sent as the form field CSRFField or the header CSRFHeader), and
// ReadOnly lets the route through so the actor can always return.
func (p *Plugin) ReturnRoute() gin.HandlerFunc {
	return p.returnRoute
}

// returnRoute is a method, not a closure, so that its name in
// c.HandlerNames, by which ReadOnly recognises it, is the same wherever it
// is used: a closure inlined into its caller is named after the caller.
func (p *Plugin) returnRoute(c *gin.Context) {
	if _, ok := p.routeRequest(c, true); ok {
		c.Next()
	}
}

// restore returns r's impersonation to the actor: the actor's new session
// is saved, the impersonation ends in the Store (so that nothing can bring
// it back), and the impersonated session is retired. If saving or the Store
// fails, nothing has changed.
func (p *Plugin) restore(r *request) error {
	c, imp := r.c, r.imp
	stored, err := p.storedID(r.user, imp.Actor.ID)
	if err != nil {
		return err
	}
	values := p.newValues(fill(r.messages().Returned, p.name(imp.Actor), p.name(imp.Actor)))
	values[p.opts.SessionKey] = stored
	if r.gs.ID == "" {
		// A cookie session's tokens are bound to a value it holds; a
		// server-side one is bound to the new ID its store gives it.
		values[p.csrfKey] = newRecordID()
	}
	sw, err := prepareSession(c, r.gs, values)
	if err != nil {
		return err
	}
	if _, err := p.endEntries(c, Selector{ID: imp.ID}, CauseLogout, ""); err != nil {
		sw.abort()
		return err
	}
	if err := sw.commit(false); err != nil {
		p.opts.Logger.Warn("loginas: the impersonated session stays in the session store; it has ended, so it is refused", "impersonation", imp.ID, "err", err)
	}
	p.setImpersonation(c, nil)
	p.touch(c, imp.Actor)
	return nil
}

// endAccess ends one impersonation: for the person whose account it uses
// (cause ended_by_target), or for a user CanManage allows (ended_by_admin).
func (p *Plugin) endAccess(c *gin.Context) {
	r, me, ok := p.personRequest(c)
	if !ok {
		return
	}
	id := r.field("impersonation")
	var entry Entry
	var err error
	if isRecordID(id) {
		entry, err = p.opts.Store.Entry(c, id)
	} else {
		err = ErrNoEntry
	}
	if err != nil && !errors.Is(err, ErrNoEntry) {
		p.fail(c, fmt.Errorf("%w: %w", ErrStore, err))
		return
	}
	found := err == nil
	var cause Cause
	switch {
	case found && entry.TargetID == me.ID:
		cause = CauseEndedByTarget
	case p.mayManage(c, me):
		cause = CauseEndedByAdmin
	default:
		// Whether the ID exists is not told to those who may not end it.
		r.refuse(CauseNotPermitted, "neither the target of this impersonation nor allowed by CanManage")
		return
	}
	if !found {
		r.refuse(CauseNoEntry, "the Store has no impersonation with this ID")
		return
	}
	ended, err := p.endEntries(c, Selector{ID: id}, cause, fmt.Sprintf("ended by %s (%s)", me.ID, p.name(me)))
	if err != nil {
		p.fail(c, err)
		return
	}
	msg := r.messages()
	flash := fill(msg.AccessEnded, entry.TargetName, p.shownActor(entry))
	if len(ended) == 0 {
		flash = msg.AlreadyEnded
	}
	r.answer(gin.H{"ended": len(ended) == 1, "impersonation": id}, flash, r.next(p.back(c)))
}

// consent grants or withdraws the signed-in person's consent to the use of
// their account. Withdrawing ends the live impersonations of it.
func (p *Plugin) consent(c *gin.Context) {
	r, me, ok := p.personRequest(c)
	if !ok {
		return
	}
	msg, now := r.messages(), p.opts.Clock()
	var until time.Time
	flash := msg.ConsentWithdrawn
	if r.field("withdraw") == "" {
		d, err := time.ParseDuration(r.field("duration"))
		if err != nil || !slices.Contains(p.opts.ConsentDurations, d) {
			r.refuse(CauseBadRequest, "duration must be one of Options.ConsentDurations")
			return
		}
		until = now.Add(d)
		flash = fillTime(msg.ConsentGranted, until)
	}
	if err := p.consents.SetConsent(c, me.ID, until); err != nil {
		p.fail(c, fmt.Errorf("%w: recording consent: %w", ErrStore, err))
		return
	}
	e := p.event(ActionConsent, CauseGranted, nil, &me)
	e.Deadline = until
	if until.IsZero() {
		e.Cause = CauseWithdrawn
	}
	_ = p.audit(c, e)
	if until.IsZero() {
		if _, err := p.endEntries(c, Selector{TargetID: me.ID}, CauseConsentWithdrawn, ""); err != nil {
			p.fail(c, err)
			return
		}
	}
	r.answer(gin.H{"consent": consentJSON(until)}, flash, r.next(p.back(c)))
}

// personRequest starts a route that acts on the signed-in person's own
// account (ending an access, consent): the checks of routeRequest, then the
// person.
func (p *Plugin) personRequest(c *gin.Context) (*request, User, bool) {
	r, ok := p.routeRequest(c, false)
	if !ok {
		return nil, User{}, false
	}
	me, ok := r.person()
	return r, me, ok
}

// person returns the signed-in user of a request that acts on their own
// account, refusing it while impersonating: the person at the keyboard is
// then somebody else.
func (r *request) person() (User, bool) {
	if r.imp != nil {
		r.refuse(CauseGuarded, "not while impersonating: the person at the keyboard is the actor")
		return User{}, false
	}
	u, ok := r.signedInUser()
	if ok {
		r.actor = &u
	}
	return u, ok
}

// signedInUser loads the user under SessionKey, refusing the request when
// there is none.
func (r *request) signedInUser() (User, bool) {
	if r.user == nil {
		r.refuse(CauseNotSignedIn, fmt.Sprintf("no value under Options.SessionKey %q", r.p.opts.SessionKey))
		return User{}, false
	}
	u, err := r.p.findUser(r.c, sessionID(r.user))
	switch {
	case errors.Is(err, ErrUserNotFound), errors.Is(err, ErrBadID):
		r.refuse(CauseNotSignedIn, fmt.Sprintf("FindUser found no user for the value under Options.SessionKey %q", r.p.opts.SessionKey))
		return User{}, false
	case err != nil:
		r.p.fail(r.c, err)
		return User{}, false
	}
	return u, true
}

// End ends the impersonation with the given ID on every instance that
// shares the Store: its session is signed out on its next request. It is
// audited as end, cause ended_by_admin; pass the request's *gin.Context as
// ctx and the event also names who ended it and from where. Ending one that
// has already ended does nothing.
func (p *Plugin) End(ctx context.Context, impersonationID string) error {
	_, err := p.endEntries(ctx, Selector{ID: impersonationID}, CauseEndedByAdmin, p.endedBy(ctx))
	return err
}

// EndAll ends every impersonation that actorID has started so far, on every
// instance that shares the Store: each one is signed out on its next
// request, audited as end with cause ended (with the request's
// *gin.Context as ctx, the events name who ended them). The actor's own
// session is untouched, and new impersonations may start afterwards. It
// compares no clocks: the Store marks the live entries.
func (p *Plugin) EndAll(ctx context.Context, actorID string) error {
	if err := ParseID(actorID); err != nil {
		return err
	}
	_, err := p.endEntries(ctx, Selector{ActorID: actorID}, CauseEnded, p.endedBy(ctx))
	return err
}

// endedBy names, for the audit trail, the signed-in user of the request when
// ctx is one's gin context.
func (p *Plugin) endedBy(ctx context.Context) string {
	c, ok := ctx.(*gin.Context)
	if !ok {
		return ""
	}
	s, _, err := sessionOf(c)
	if err != nil {
		return ""
	}
	if id := sessionID(s.Get(p.sessionKey)); id != "" {
		return "ended by " + printableID(id)
	}
	return ""
}

// endEntries ends what sel picks in the Store and records each end that
// this call made: audit (with detail), History and Notify.
func (p *Plugin) endEntries(ctx context.Context, sel Selector, cause Cause, detail string) ([]Entry, error) {
	now := p.opts.Clock()
	ended, err := p.opts.Store.End(ctx, sel, cause, now)
	if err != nil {
		return nil, fmt.Errorf("%w: ending an impersonation: %w", ErrStore, err)
	}
	p.entries.ended(sel, ended, now)
	for _, e := range ended {
		ev := p.entryEvent(ActionEnd, e)
		ev.Detail = detail
		_ = p.audit(ctx, ev)
		if err := p.record(ctx, e); err != nil {
			p.opts.Logger.Error("loginas: recording the end in the history", "impersonation", e.ID, "err", err)
		}
		p.notify(ctx, e)
	}
	return ended, nil
}

// record writes e to the History, unless the History is the Store, which
// has it already.
func (p *Plugin) record(ctx context.Context, e Entry) error {
	if !p.separateHistory {
		return nil
	}
	return p.opts.History.Record(ctx, e)
}

// notify hands e to Options.Notify, with the actor shown as the person sees
// them.
func (p *Plugin) notify(ctx context.Context, e Entry) {
	if p.opts.Notify != nil {
		e.ActorName = p.shownActor(e)
		p.opts.Notify(ctx, e)
	}
}

// shownActor is the actor's name as the person impersonated sees it.
func (p *Plugin) shownActor(e Entry) string {
	if p.opts.ActorLabel != "" {
		return p.opts.ActorLabel
	}
	return e.ActorName
}

// touch calls UpdateLastLogin after a switch or return, logging its error.
func (p *Plugin) touch(c *gin.Context, u User) {
	if p.opts.UpdateLastLogin == nil {
		return
	}
	if err := p.opts.UpdateLastLogin(c, u); err != nil {
		p.opts.Logger.Error("loginas: UpdateLastLogin failed", "user", u.ID, "err", err)
	}
}

// findUser validates id and loads the user. The user's own ID, which may be
// another spelling of id, is the one the plugin uses from then on.
func (p *Plugin) findUser(ctx context.Context, id string) (User, error) {
	if err := ParseID(id); err != nil {
		return User{}, err
	}
	u, err := p.opts.FindUser(ctx, id)
	if err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return User{}, ErrUserNotFound
		}
		return User{}, fmt.Errorf("%w: %w", ErrUserStore, err)
	}
	if ParseID(u.ID) != nil {
		return User{}, fmt.Errorf("%w: FindUser(%q) returned a user whose ID %q is not a valid ID", ErrUserStore, id, u.ID)
	}
	return u, nil
}

func (p *Plugin) userJSON(u User) gin.H {
	return gin.H{"id": u.ID, "name": p.name(u)}
}

func (p *Plugin) stateJSON(imp *Impersonation) gin.H {
	return gin.H{
		"impersonating": true,
		"impersonation": imp.ID,
		"user":          p.userJSON(imp.Target),
		"impersonator":  p.userJSON(imp.Actor),
		"deadline":      imp.Deadline.UTC().Format(time.RFC3339),
	}
}

// liveConsent returns until when the person's grant lasts, or the zero time
// when they have none that lasts past now.
func (p *Plugin) liveConsent(ctx context.Context, targetID string) (time.Time, error) {
	until, err := p.consents.Consent(ctx, targetID)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: reading the consent of %s: %w", ErrStore, targetID, err)
	}
	if !p.opts.Clock().Before(until) {
		return time.Time{}, nil
	}
	return until, nil
}

func consentJSON(until time.Time) gin.H {
	if until.IsZero() {
		return gin.H{"granted": false, "until": nil}
	}
	return gin.H{"granted": true, "until": until.UTC().Format(time.RFC3339)}
}
