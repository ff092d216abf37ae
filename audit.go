package loginas

import (
	"context"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

// Action says what an audit event records.
type Action string

// The audit actions.
const (
	ActionStart  Action = "start"  // an impersonation began
	ActionEnd    Action = "end"    // an impersonation ended; Cause says how
	ActionDenied Action = "denied" // a request was refused; Cause says why
)

// Cause says why an impersonation ended or a request was refused.
type Cause string

// Causes of ActionEnd.
const (
	CauseLogout  Cause = "logout"  // the actor returned through the logout route or Restore
	CauseExpired Cause = "expired" // the time limit passed
	CauseRevoked Cause = "revoked" // revalidation failed: a right was withdrawn, a user disabled or deleted
	CauseInvalid Cause = "invalid" // the record was malformed, forged, or did not match the session
	CauseEnded   Cause = "ended"   // the app ended it with EndAll
	CauseFailed  Cause = "failed"  // the session could not be saved after the start was recorded
)

// Causes of ActionDenied.
const (
	CauseNotSignedIn    Cause = "not_signed_in"
	CauseNotPermitted   Cause = "not_permitted" // CanImpersonate refused the actor
	CauseNested         Cause = "nested"        // already impersonating
	CauseBadID          Cause = "bad_id"
	CauseNotFound       Cause = "not_found"
	CauseSelf           Cause = "self"
	CauseSuperuser      Cause = "superuser"
	CauseInactive       Cause = "inactive"
	CauseHook           Cause = "hook" // CanLoginAs refused the pair
	CauseReasonRequired Cause = "reason_required"
	CauseReasonTooLong  Cause = "reason_too_long"
	CauseReasonInvalid  Cause = "reason_invalid"
	CauseBadRequest     Cause = "bad_request"
	CauseForbidden      Cause = "forbidden" // failed the cross-origin or CSRF check
	CauseGuarded        Cause = "guarded"   // a route behind Guard
	CauseReadOnly       Cause = "read_only" // an unsafe method under Options.ReadOnly
)

// Event is one entry of the audit trail.
type Event struct {
	Action Action
	Cause  Cause
	// ImpersonationID names one impersonation; its start and end events
	// share it. Empty for refusals of a switch.
	ImpersonationID string
	ActorID         string
	ActorName       string
	TargetID        string
	TargetName      string
	Reason          string
	// Detail is the text shown to the actor for a refusal, or the error
	// behind an end of cause "invalid" or "failed".
	Detail    string
	Time      time.Time
	ClientIP  string // gin's ClientIP: honours the engine's trusted proxies
	UserAgent string
	Method    string
	Path      string
}

// SlogAudit returns an audit sink that writes each event to logger at level
// Info (starts and ends) or Warn (refusals). It is the default sink.
func SlogAudit(logger *slog.Logger) func(c *gin.Context, e Event) error {
	return func(c *gin.Context, e Event) error {
		level := slog.LevelInfo
		if e.Action == ActionDenied {
			level = slog.LevelWarn
		}
		logger.LogAttrs(context.Background(), level, "loginas "+string(e.Action),
			slog.String("cause", string(e.Cause)),
			slog.String("impersonation", e.ImpersonationID),
			slog.String("actor_id", e.ActorID),
			slog.String("actor", e.ActorName),
			slog.String("target_id", e.TargetID),
			slog.String("target", e.TargetName),
			slog.String("reason", e.Reason),
			slog.String("detail", e.Detail),
			slog.Time("time", e.Time),
			slog.String("ip", e.ClientIP),
			slog.String("user_agent", e.UserAgent),
			slog.String("method", e.Method),
			slog.String("path", e.Path),
		)
		return nil
	}
}

// audit fills the request fields of e and hands it to the sink.
func (p *Plugin) audit(c *gin.Context, e Event) error {
	e.Time = p.opts.Clock().UTC()
	e.ClientIP = c.ClientIP()
	e.UserAgent = c.Request.UserAgent()
	e.Method = c.Request.Method
	e.Path = c.Request.URL.Path
	err := p.opts.Audit(c, e)
	if err != nil {
		p.opts.Logger.Error("loginas: audit sink failed", "action", e.Action, "cause", e.Cause, "err", err)
	}
	return err
}

// eventFor starts an event about an actor and a target.
func (p *Plugin) eventFor(action Action, cause Cause, actor, target *User) Event {
	e := Event{Action: action, Cause: cause}
	if actor != nil {
		e.ActorID, e.ActorName = actor.ID, p.opts.DisplayName(*actor)
	}
	if target != nil {
		e.TargetID, e.TargetName = target.ID, p.opts.DisplayName(*target)
	}
	return e
}
