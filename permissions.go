package loginas

import (
	"errors"

	"github.com/gin-gonic/gin"
)

// Refusal is a refused request: its Message is shown to the person, its
// Cause goes to the audit trail. CanLoginAs returns one (through Refuse) to
// explain a refusal; ErrorHandler receives one for every 4xx answer.
type Refusal struct {
	Cause   Cause
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Refuse returns an error for Options.CanLoginAs that refuses the switch and
// shows message to the actor.
func Refuse(message string) error {
	return &Refusal{Cause: CauseHook, Message: message}
}

// mayImpersonate applies the actor-only rules: an active actor that
// CanImpersonate allows. Actors refused here never learn whether a target
// exists.
func (p *Plugin) mayImpersonate(c *gin.Context, actor User) bool {
	return actor.Active && p.opts.CanImpersonate(c, actor)
}

// mayManage reports whether u may see every live impersonation and end any
// of them.
func (p *Plugin) mayManage(c *gin.Context, u User) bool {
	if p.opts.CanManage == nil {
		return p.mayImpersonate(c, u)
	}
	return u.Active && p.opts.CanManage(c, u)
}

// pairRule applies the rules about one actor and one target, in order:
// never oneself, never a disabled user, never a superuser unless allowed,
// then the app's CanLoginAs. It returns nil when the switch is allowed; a
// Refusal without a Message gets the catalog's text for its cause.
func (p *Plugin) pairRule(c *gin.Context, actor, target User) *Refusal {
	switch {
	case actor.ID == target.ID:
		return &Refusal{Cause: CauseSelf}
	case !target.Active:
		return &Refusal{Cause: CauseInactive}
	case target.Superuser && !p.opts.AllowSuperuserTargets:
		return &Refusal{Cause: CauseSuperuser}
	}
	if p.opts.CanLoginAs == nil {
		return nil
	}
	err := p.opts.CanLoginAs(c, actor, target)
	if err == nil {
		return nil
	}
	var r *Refusal
	if errors.As(err, &r) && r.Message != "" {
		return &Refusal{Cause: CauseHook, Message: cleanText(r.Message, maxEventText, true)}
	}
	return &Refusal{Cause: CauseHook}
}

// allowed applies every rule, as at the start of an impersonation.
func (p *Plugin) allowed(c *gin.Context, actor, target User) *Refusal {
	if !p.mayImpersonate(c, actor) {
		return &Refusal{Cause: CauseNotPermitted}
	}
	return p.pairRule(c, actor, target)
}
