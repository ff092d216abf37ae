package loginas

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Action says what an audit event records.
type Action string

// The audit actions.
const (
	ActionStart   Action = "start"   // an impersonation began
	ActionEnd     Action = "end"     // an impersonation ended; Cause says how
	ActionDenied  Action = "denied"  // a request was refused; Cause says why
	ActionConsent Action = "consent" // a person granted or withdrew consent; Cause says which
)

// Cause says why an impersonation ended or a request was refused.
type Cause string

// Causes of ActionEnd.
const (
	CauseLogout           Cause = "logout"            // the actor returned (logout route, Restore), or the app signed the session out
	CauseExpired          Cause = "expired"           // the time limit passed
	CauseRevoked          Cause = "revoked"           // revalidation failed: a right was withdrawn, a user disabled or deleted
	CauseInvalid          Cause = "invalid"           // the record was malformed, forged, or did not match the session
	CauseStale            Cause = "stale"             // the Store does not know the impersonation: a restart of an in-memory Store, or another instance's without a shared Store
	CauseEnded            Cause = "ended"             // the app ended every impersonation of the actor with EndAll
	CauseEndedByAdmin     Cause = "ended_by_admin"    // someone CanManage allows ended it, or the app with End
	CauseEndedByTarget    Cause = "ended_by_target"   // the person whose account it used ended it
	CauseConsentWithdrawn Cause = "consent_withdrawn" // the person withdrew their consent
	CauseFailed           Cause = "failed"            // the start was recorded, then a store failed: it never began
)

// Causes of ActionDenied.
const (
	CauseNotSignedIn      Cause = "not_signed_in"
	CauseNotPermitted     Cause = "not_permitted" // CanImpersonate (or CanManage) refused the user
	CauseNested           Cause = "nested"        // already impersonating
	CauseBadID            Cause = "bad_id"
	CauseNotFound         Cause = "not_found"
	CauseSelf             Cause = "self"
	CauseSuperuser        Cause = "superuser"
	CauseInactive         Cause = "inactive"
	CauseHook             Cause = "hook"       // CanLoginAs refused the pair
	CauseNoConsent        Cause = "no_consent" // RequireConsent, and the target has no live grant
	CauseReasonRequired   Cause = "reason_required"
	CauseReasonTooLong    Cause = "reason_too_long"
	CauseReasonInvalid    Cause = "reason_invalid"
	CauseBadRequest       Cause = "bad_request"
	CauseTooLarge         Cause = "too_large"         // a body over 64 KiB
	CauseUnsupportedMedia Cause = "unsupported_media" // a body that is neither a form nor JSON
	CauseMethod           Cause = "method"            // a method the route does not take
	CauseForbidden        Cause = "forbidden"         // failed the cross-origin or CSRF check
	CauseGuarded          Cause = "guarded"           // a route behind Guard, or acting on one's own account while impersonating
	CauseReadOnly         Cause = "read_only"         // an unsafe method under Options.ReadOnly
	CauseNoEntry          Cause = "no_entry"          // ending an impersonation the Store does not know
)

// Causes of ActionConsent.
const (
	CauseGranted   Cause = "granted"
	CauseWithdrawn Cause = "withdrawn"
)

// maxEventText caps each text field of an Event that comes from a request
// (user agent, path, detail, reason), in bytes.
const maxEventText = 1024

// maxNameLength caps a display name, in bytes.
const maxNameLength = 256

// Event is one entry of the audit trail. Every text field is valid UTF-8
// without control or bidirectional-override characters (they are written
// as \x1b, \u202e and so on), and those that come from a request are at
// most 1 KiB.
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
	// Detail is the text shown to the actor for a refusal, or what lies
	// behind an end.
	Detail string
	// Deadline is the deadline of an impersonation that starts, or until
	// when a consent is granted.
	Deadline  time.Time
	Time      time.Time
	ClientIP  string // gin's ClientIP: honours the engine's trusted proxies
	UserAgent string
	Method    string
	Path      string
}

// SlogAudit returns an audit sink that writes each event to logger at level
// Info (starts, ends, consent) or Warn (refusals). It is the default sink.
func SlogAudit(logger *slog.Logger) func(ctx context.Context, e Event) error {
	return func(ctx context.Context, e Event) error {
		level := slog.LevelInfo
		if e.Action == ActionDenied {
			level = slog.LevelWarn
		}
		logger.LogAttrs(context.WithoutCancel(ctx), level, "loginas "+string(e.Action),
			slog.String("cause", string(e.Cause)),
			slog.String("impersonation", e.ImpersonationID),
			slog.String("actor_id", e.ActorID),
			slog.String("actor", e.ActorName),
			slog.String("target_id", e.TargetID),
			slog.String("target", e.TargetName),
			slog.String("reason", e.Reason),
			slog.String("detail", e.Detail),
			slog.Time("deadline", e.Deadline),
			slog.Time("time", e.Time),
			slog.String("ip", e.ClientIP),
			slog.String("user_agent", e.UserAgent),
			slog.String("method", e.Method),
			slog.String("path", e.Path),
		)
		return nil
	}
}

// audit fills the time and, when ctx is a request's gin context, the
// request fields of e, cleans its texts and hands it to the sink.
func (p *Plugin) audit(ctx context.Context, e Event) error {
	e.Time = p.opts.Clock().UTC()
	if c, ok := ctx.(*gin.Context); ok && c.Request != nil {
		e.ClientIP = c.ClientIP()
		e.UserAgent = c.Request.UserAgent()
		e.Method = c.Request.Method
		e.Path = c.Request.URL.Path
	}
	for _, f := range []*string{&e.Detail, &e.Reason} {
		*f = cleanText(*f, maxEventText, true)
	}
	for _, f := range []*string{&e.UserAgent, &e.Path, &e.Method, &e.ClientIP} {
		*f = cleanText(*f, maxEventText, false)
	}
	for _, f := range []*string{&e.ActorName, &e.TargetName} {
		*f = cleanText(*f, maxNameLength, false)
	}
	err := p.opts.Audit(ctx, e)
	if err != nil {
		p.opts.Logger.Error("loginas: audit sink failed", "action", e.Action, "cause", e.Cause, "err", err)
	}
	return err
}

// event starts an event about an actor and a target.
func (p *Plugin) event(action Action, cause Cause, actor, target *User) Event {
	e := Event{Action: action, Cause: cause}
	if actor != nil {
		e.ActorID, e.ActorName = actor.ID, p.name(*actor)
	}
	if target != nil {
		e.TargetID, e.TargetName = target.ID, p.name(*target)
	}
	return e
}

// entryEvent is the event of an impersonation that starts, or ends with the
// entry's cause.
func (p *Plugin) entryEvent(action Action, e Entry) Event {
	ev := Event{
		Action: action, Cause: e.Cause, ImpersonationID: e.ID,
		ActorID: e.ActorID, ActorName: e.ActorName, TargetID: e.TargetID, TargetName: e.TargetName,
	}
	if action == ActionStart {
		ev.Reason, ev.Deadline = e.Reason, e.Deadline
	}
	return ev
}

// cleanText makes s safe to show and to log: invalid UTF-8 becomes U+FFFD,
// control characters (but tab and, when multiline, newline), line
// separators and bidirectional controls are written as escapes such as
// \x1b and \u202e, and the result is cut to at most max bytes on a
// character boundary.
func cleanText(s string, max int, multiline bool) string {
	if len(s) <= max && !needsCleaning(s, multiline) {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		piece := string(r)
		if unsafeRune(r, multiline) {
			piece = strconv.QuoteRuneToASCII(r)
			piece = piece[1 : len(piece)-1]
		}
		if b.Len()+len(piece) > max {
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}

func needsCleaning(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unsafeRune(r, multiline) {
			return true
		}
	}
	return false
}

// unsafeRune reports whether r could disguise text in a page or a log:
// control characters other than tab (and newline, in multiline text), line
// and paragraph separators, and bidirectional marks, embeddings, overrides
// and isolates.
func unsafeRune(r rune, multiline bool) bool {
	switch {
	case r == '\t' || (r == '\n' && multiline):
		return false
	case unicode.IsControl(r), r == '\u2028', r == '\u2029':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e', r == '\u200f', r == '\u061c':
		return true
	}
	return false
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
