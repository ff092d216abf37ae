package loginas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// ContextKey is the gin context key holding a bool: true while the request's
// session is an impersonation. Handlers read it with c.GetBool(ContextKey).
const ContextKey = "is_impersonated"

// Response headers set on every impersonated response, so that a front end
// can tell it is acting for another user and who is behind it.
const (
	HeaderImpersonatedUser = "X-Impersonated-User" // the target's ID
	HeaderImpersonator     = "X-Impersonator"      // the actor's ID
)

// Impersonation describes the impersonation a request belongs to.
type Impersonation struct {
	ID       string // names this impersonation; its audit events share it
	Actor    User   // the person really at the keyboard
	Target   User   // the user whose account is in use
	Started  time.Time
	Deadline time.Time
}

// TimeLeft returns how long the impersonation may still last at now, never
// less than zero.
func (i Impersonation) TimeLeft(now time.Time) time.Duration {
	return max(i.Deadline.Sub(now), 0)
}

// LogAttrs returns slog attributes naming both people, for request logs and
// records written while impersonating.
func (i Impersonation) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("impersonation", i.ID),
		slog.String("actor_id", i.Actor.ID),
		slog.String("target_id", i.Target.ID),
	}
}

type impersonationKey struct{}

// IsImpersonated reports whether the request's session is an impersonation.
func IsImpersonated(c *gin.Context) bool {
	return c.GetBool(ContextKey)
}

// Current returns the request's impersonation, if it is one.
func Current(c *gin.Context) (Impersonation, bool) {
	v, ok := c.Get(impersonationKey{})
	if !ok {
		return Impersonation{}, false
	}
	imp, ok := v.(*Impersonation)
	if !ok || imp == nil {
		return Impersonation{}, false
	}
	return *imp, true
}

// FromContext returns the impersonation carried by ctx, for code below the
// handlers that gets c.Request.Context() rather than the gin context.
func FromContext(ctx context.Context) (Impersonation, bool) {
	imp, ok := ctx.Value(impersonationKey{}).(*Impersonation)
	if !ok || imp == nil {
		return Impersonation{}, false
	}
	return *imp, true
}

// Middleware returns the handler that Register installs: it sets ContextKey
// on every request, verifies an impersonation's record, and signs out a
// session whose impersonation is forged, expired, ended or no longer
// permitted.
func (p *Plugin) Middleware() gin.HandlerFunc {
	return p.middleware
}

func (p *Plugin) middleware(c *gin.Context) {
	s, gs, err := sessionOf(c)
	if err != nil {
		p.fail(c, err)
		return
	}
	c.Set(ContextKey, false)
	userValue := s.Get(p.sessionKey)
	if userValue == nil {
		// An empty session may be one the store failed to load.
		if err := loadError(c, gs); err != nil {
			p.fail(c, err)
			return
		}
		c.Next()
		return
	}
	raw := s.Get(p.recordKey)
	if raw == nil {
		c.Next()
		return
	}
	imp, ending, err := p.verify(c, userValue, raw)
	if err != nil {
		p.fail(c, err)
		return
	}
	if ending != nil {
		if err := p.signOut(c, gs, *ending); err != nil {
			p.fail(c, err)
			return
		}
		c.Next()
		return
	}
	c.Set(ContextKey, true)
	c.Set(impersonationKey{}, imp)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), impersonationKey{}, imp))
	c.Header(HeaderImpersonatedUser, imp.Target.ID)
	c.Header(HeaderImpersonator, imp.Actor.ID)
	if p.opts.ReadOnly && !safeMethod(c.Request.Method) && c.FullPath() != p.logoutURL {
		p.deny(c, http.StatusForbidden, &Refusal{Cause: CauseReadOnly, Message: p.messages(c).ReadOnly}, imp)
		return
	}
	c.Next()
}

// ending is why middleware must sign an impersonated session out.
type ending struct {
	event    Event
	message  string
	deadline time.Time // the record's, when it was genuine
}

// verify checks an impersonated session: the record's signature, that it
// names the session's user, its deadline, and (unless turned off) that the
// actor may still log in as the target. It returns the impersonation, or why
// it must end; err is set only when a store failed.
func (p *Plugin) verify(c *gin.Context, userValue, raw any) (*Impersonation, *ending, error) {
	msg := p.messages(c)
	invalid := func(detail string) *ending {
		e := Event{Action: ActionEnd, Cause: CauseInvalid, Detail: detail, TargetID: sessionID(userValue)}
		return &ending{event: e, message: msg.Invalid}
	}
	encoded, ok := raw.(string)
	if !ok {
		return nil, invalid("record is not a string"), nil
	}
	rec, err := p.keys.decode(encoded)
	if err != nil {
		return nil, invalid(err.Error()), nil
	}
	if sessionID(userValue) != rec.TargetID {
		return nil, invalid("record names another user than the session"), nil
	}
	actor, actorErr := p.opts.FindUser(c, rec.ActorID)
	target, targetErr := p.opts.FindUser(c, rec.TargetID)
	for _, err := range []error{actorErr, targetErr} {
		if err != nil && !errors.Is(err, ErrUserNotFound) {
			return nil, nil, errors.Join(ErrUserStore, err)
		}
	}
	if actorErr != nil {
		actor = User{ID: rec.ActorID}
	}
	if targetErr != nil {
		target = User{ID: rec.TargetID}
	}
	end := func(cause Cause, text, detail string) *ending {
		e := p.eventFor(ActionEnd, cause, &actor, &target)
		e.ImpersonationID, e.Detail = rec.ID, detail
		return &ending{event: e, message: fill(text, p.opts.DisplayName(target), p.opts.DisplayName(actor)), deadline: rec.Deadline}
	}
	now := p.opts.Clock()
	if !now.Before(rec.Deadline) {
		return nil, end(CauseExpired, msg.Expired, "time limit reached"), nil
	}
	switch {
	case actorErr != nil:
		return nil, end(CauseRevoked, msg.Revoked, "actor no longer exists"), nil
	case targetErr != nil:
		return nil, end(CauseRevoked, msg.Revoked, "target no longer exists"), nil
	case !actor.Active:
		return nil, end(CauseRevoked, msg.Revoked, "actor is disabled"), nil
	case !target.Active:
		return nil, end(CauseRevoked, msg.Revoked, "target is disabled"), nil
	}
	ended, err := p.endedBy(c, actor.ID, rec.Started)
	if err != nil {
		return nil, nil, err
	}
	if ended {
		return nil, end(CauseEnded, msg.Ended, "ended by EndAll"), nil
	}
	if ended, err = p.wasEnded(c, rec.ID); err != nil {
		return nil, nil, err
	}
	if ended {
		// A request that was still running when the impersonation ended
		// saved its copy of the session back into the store.
		return nil, end(CauseInvalid, msg.Invalid, "impersonation had already ended"), nil
	}
	if !p.opts.SkipRevalidation {
		if r := p.allowed(c, actor, target); r != nil {
			return nil, end(CauseRevoked, msg.Revoked, "permission withdrawn: "+string(r.Cause)), nil
		}
	}
	return &Impersonation{ID: rec.ID, Actor: actor, Target: target, Started: rec.Started, Deadline: rec.Deadline}, nil, nil
}

// signOut replaces the session with an empty one holding only a flash
// message, then records the end.
func (p *Plugin) signOut(c *gin.Context, gs *gsessions.Session, e ending) error {
	if err := replaceSession(c, gs, p.newValues(e.message)); err != nil {
		return err
	}
	if e.event.ImpersonationID != "" {
		p.rememberEnd(c, e.event.ImpersonationID, e.deadline)
	}
	_ = p.audit(c, e.event)
	return nil
}

// newValues returns the values of a fresh session: a flash message if one
// is given, nothing else.
func (p *Plugin) newValues(flash string) map[any]any {
	values := map[any]any{}
	if flash != "" {
		values[p.flashKey()] = []any{flash}
	}
	return values
}

func (p *Plugin) flashKey() string {
	if p.opts.FlashKey != "" {
		return p.opts.FlashKey
	}
	return "_flash"
}

// sessionID turns the value an app keeps under SessionKey into a string ID.
func sessionID(v any) string {
	switch id := v.(type) {
	case string:
		return id
	case int:
		return strconv.Itoa(id)
	case int64:
		return strconv.FormatInt(id, 10)
	case int32:
		return strconv.FormatInt(int64(id), 10)
	case uint:
		return strconv.FormatUint(uint64(id), 10)
	case uint64:
		return strconv.FormatUint(id, 10)
	case uint32:
		return strconv.FormatUint(uint64(id), 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
