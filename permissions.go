package loginas

import (
	"errors"

	"github.com/gin-gonic/gin"
)

// Refusal is a refused request: its Message is shown to the person, its
// Cause goes to the audit trail. CanLoginAs returns one (through Refuse) to
// explain a refusal; ErrorHandler receives one for 403 answers.
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

// pairRule applies the rules about one actor and one target, in order:
// never oneself, never a disabled user, never a superuser unless allowed,
// then the app's CanLoginAs. It returns nil when the switch is allowed.
func (p *Plugin) pairRule(c *gin.Context, actor, target User) *Refusal {
	msg := p.messages(c)
	switch {
	case actor.ID == target.ID:
		return &Refusal{Cause: CauseSelf, Message: msg.Self}
	case !target.Active:
		return &Refusal{Cause: CauseInactive, Message: msg.InactiveTarget}
	case target.Superuser && !p.opts.AllowSuperuserTargets:
		return &Refusal{Cause: CauseSuperuser, Message: msg.SuperuserTarget}
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
		return &Refusal{Cause: CauseHook, Message: r.Message}
	}
	return &Refusal{Cause: CauseHook, Message: msg.NotPermitted}
}

// allowed applies every rule, as at the start of an impersonation.
func (p *Plugin) allowed(c *gin.Context, actor, target User) *Refusal {
	if !p.mayImpersonate(c, actor) {
		return &Refusal{Cause: CauseNotPermitted, Message: p.messages(c).NotPermitted}
	}
	return p.pairRule(c, actor, target)
}
