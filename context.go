package loginas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// ContextKey is the gin context key holding a bool: true while the request's
// session is an impersonation. Handlers read it with c.GetBool(ContextKey).
const ContextKey = "is_impersonated"

// pluginKey is the gin context key of the plugin that served the request,
// for the template helpers that get only the context.
const pluginKey = "loginas.plugin"

// Response headers set on every impersonated response, so that a front end
// can tell it is acting for another user and who is behind it.
const (
	HeaderImpersonatedUser = "X-Impersonated-User" // the target's ID
	HeaderImpersonator     = "X-Impersonator"      // the actor's ID
)

// Impersonation describes the impersonation a request belongs to. Actor
// and Target are the users FindUser returned on this request, Data
// included, so the app need not load them again.
type Impersonation struct {
	ID       string // names this impersonation; its audit events share it
	Actor    User   // the person really at the keyboard
	Target   User   // the user whose account is in use
	Started  time.Time
	Deadline time.Time
	Reason   string
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
	if imp := current(c); imp != nil {
		return *imp, true
	}
	return Impersonation{}, false
}

func current(c *gin.Context) *Impersonation {
	v, _ := c.Get(impersonationKey{})
	imp, _ := v.(*Impersonation)
	return imp
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

// setImpersonation is the one place that sets, or with nil clears, the
// request's impersonation: the "is_impersonated" flag, Current, FromContext
// and the response headers.
func (p *Plugin) setImpersonation(c *gin.Context, imp *Impersonation) {
	c.Set(ContextKey, imp != nil)
	if imp == nil {
		if current(c) == nil {
			return
		}
		c.Delete(impersonationKey{})
		c.Writer.Header().Del(HeaderImpersonatedUser)
		c.Writer.Header().Del(HeaderImpersonator)
	} else {
		c.Set(impersonationKey{}, imp)
		h := c.Writer.Header() // the names are canonical already
		h[HeaderImpersonatedUser] = []string{imp.Target.ID}
		h[HeaderImpersonator] = []string{imp.Actor.ID}
	}
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), impersonationKey{}, imp))
}

// Middleware returns the handler that Register installs: it sets ContextKey
// on every request, verifies an impersonation's record and its entry in the
// Store, and signs out a session whose impersonation is forged, expired,
// ended or no longer permitted. It also answers 405 for other methods on
// the plugin's paths.
func (p *Plugin) Middleware() gin.HandlerFunc {
	return p.middleware
}

func (p *Plugin) middleware(c *gin.Context) {
	if c.FullPath() == "" {
		if allow := p.routes.allow(c.Request.URL.Path); allow != "" && !slices.Contains(strings.Split(allow, ", "), c.Request.Method) {
			p.methodNotAllowed(c, allow)
			return
		}
	}
	s, gs, err := sessionOf(c)
	if err != nil {
		p.fail(c, err)
		return
	}
	c.Set(pluginKey, p)
	c.Set(ContextKey, false)
	userValue, raw := s.Get(p.sessionKey), s.Get(p.recordKey)
	if userValue == nil {
		// An empty session may be one the store failed to load.
		if err := loadError(c, gs); err != nil {
			p.fail(c, err)
			return
		}
		if raw != nil || s.Get(p.csrfKey) != nil {
			if err := p.dropRecord(c, gs, raw); err != nil {
				p.fail(c, err)
				return
			}
		}
		c.Next()
		return
	}
	if raw == nil {
		c.Next()
		return
	}
	imp, end, err := p.verify(c, userValue, raw)
	if err != nil {
		p.fail(c, err)
		return
	}
	if end != nil {
		if err := p.signOut(c, gs, end); err != nil {
			p.fail(c, err)
			return
		}
		c.Next()
		return
	}
	p.setImpersonation(c, imp)
	if p.opts.ReadOnly && !safeMethod(c.Request.Method) && !p.exempted(c) {
		r := p.newRequest(c, s, gs)
		r.refuse(CauseReadOnly, "Options.ReadOnly; the app's own logout route needs ReturnRoute")
		return
	}
	c.Next()
}

// methodNotAllowed answers a method the plugin's path does not take, with
// the methods it does take (allow) in the Allow header. It looks at nothing
// else, so it changes nothing and is not audited.
func (p *Plugin) methodNotAllowed(c *gin.Context, allow string) {
	c.Header("Allow", allow)
	r := &request{p: p, c: c}
	r.refuse(CauseMethod, "the plugin's routes take "+allow)
}

// exempted reports whether the request's route is one that ends the
// impersonation and so passes ReadOnly: the plugin's logout handler, or a
// route behind ReturnRoute.
func (p *Plugin) exempted(c *gin.Context) bool {
	for _, name := range c.HandlerNames() {
		if p.exempt[name] {
			return true
		}
	}
	return false
}

// ending is why the middleware must sign an impersonated session out.
type ending struct {
	cause  Cause
	detail string
	entry  Entry
	// live says the Store still has the entry live: it is ended there and
	// the end recorded. Otherwise the end was recorded already, or (once)
	// the audit trail hears of it now.
	live bool
	// onceKey, when set, names an end the Store cannot record (it does not
	// know the impersonation): it is audited the first time this instance
	// sees it.
	onceKey string
}

// verify checks an impersonated session: the record's signature, that it
// names the session's user, its entry in the Store, its deadline, and
// (unless turned off) that the actor may still log in as the target. It
// returns the impersonation, or why it must end; err is set only when a
// store failed.
func (p *Plugin) verify(c *gin.Context, userValue, raw any) (*Impersonation, *ending, error) {
	encoded, _ := raw.(string)
	rec, err := p.keys.decode(encoded)
	if err != nil {
		e := &ending{cause: CauseInvalid, detail: "record is malformed or its signature does not match", onceKey: "record:" + truncate(encoded, maxRecordLength)}
		e.entry.TargetID = printableID(sessionID(userValue))
		return nil, e, nil
	}
	unknown := Entry{ID: rec.ID, ActorID: rec.ActorID, TargetID: rec.TargetID, Started: rec.Started, Deadline: rec.Deadline}
	if sessionID(userValue) != rec.TargetID {
		return nil, &ending{cause: CauseInvalid, detail: "record names another user than the session", entry: unknown, onceKey: rec.ID}, nil
	}
	now := p.opts.Clock()
	entry, err := p.entry(c, rec.ID, now)
	switch {
	case errors.Is(err, ErrNoEntry):
		e := &ending{cause: CauseStale, detail: "the Store does not know this impersonation", entry: unknown, onceKey: rec.ID}
		switch {
		case !now.Before(rec.Deadline):
			e.cause, e.detail = CauseExpired, "time limit reached"
		case rec.Started.Before(p.started):
			e.detail = "it started before this instance did, and the Store does not know it (an in-memory Store forgets across restarts)"
		}
		return nil, e, nil
	case err != nil:
		return nil, nil, fmt.Errorf("%w: looking up impersonation %s: %w", ErrStore, rec.ID, err)
	case entry.ActorID != rec.ActorID || entry.TargetID != rec.TargetID:
		return nil, &ending{cause: CauseInvalid, detail: "the Store's entry names other users than the record", entry: unknown, onceKey: rec.ID}, nil
	case !entry.Ended.IsZero():
		return nil, &ending{cause: entry.Cause, entry: entry}, nil
	case !now.Before(rec.Deadline):
		return nil, &ending{cause: CauseExpired, detail: "time limit reached", entry: entry, live: true}, nil
	}
	revoked := func(detail string) *ending {
		return &ending{cause: CauseRevoked, detail: detail, entry: entry, live: true}
	}
	actor, err := p.findUser(c, rec.ActorID)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return nil, nil, err
	}
	if err != nil || actor.ID != rec.ActorID {
		return nil, revoked("actor no longer exists"), nil
	}
	target, err := p.findUser(c, rec.TargetID)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return nil, nil, err
	}
	switch {
	case err != nil || target.ID != rec.TargetID:
		return nil, revoked("target no longer exists"), nil
	case !actor.Active:
		return nil, revoked("actor is disabled"), nil
	case !target.Active:
		return nil, revoked("target is disabled"), nil
	}
	if !p.opts.SkipRevalidation {
		if r := p.allowed(c, actor, target); r != nil {
			return nil, revoked("permission withdrawn: " + string(r.Cause)), nil
		}
	}
	return &Impersonation{ID: rec.ID, Actor: actor, Target: target, Started: rec.Started, Deadline: rec.Deadline, Reason: entry.Reason}, nil, nil
}

// signOut replaces the session with an empty one holding only a flash
// message that says why, and ends the impersonation in the Store when it is
// still live there. A store that fails leaves the session as it was, to be
// tried again on the next request.
func (p *Plugin) signOut(c *gin.Context, gs *gsessions.Session, e *ending) error {
	sw, err := prepareSession(c, gs, p.newValues(p.messages(c).ended(e.cause, p.endedName(c, e))))
	if err != nil {
		return err
	}
	switch {
	case e.live:
		if _, err := p.endEntries(c, Selector{ID: e.entry.ID}, e.cause, e.detail); err != nil {
			sw.abort()
			return err
		}
	case e.onceKey != "" && p.reported.first(e.onceKey):
		ev := p.entryEvent(ActionEnd, e.entry)
		ev.Cause, ev.Detail = e.cause, e.detail
		_ = p.audit(c, ev)
	default:
		p.quiet.count("replayed_" + string(e.cause))
	}
	if err := sw.commit(false); err != nil {
		p.opts.Logger.Warn("loginas: a signed-out session stays in the session store; its impersonation is over, so it is refused", "impersonation", e.entry.ID, "err", err)
	}
	return nil
}

// endedName is the target's name for the message that tells the actor why
// their session ended. An entry the Store no longer has (it dropped one past
// its deadline) carries only the target's ID, from the signed record, so
// the user is looked up. The messages for an invalid record and for one
// the Store never knew name nobody.
func (p *Plugin) endedName(c *gin.Context, e *ending) string {
	if e.entry.TargetName != "" || e.cause == CauseInvalid || e.cause == CauseStale || e.entry.TargetID == "" {
		return e.entry.TargetName
	}
	if u, err := p.findUser(c, e.entry.TargetID); err == nil {
		return p.name(u)
	}
	return e.entry.TargetID
}

// dropRecord cleans a session that holds a record or a CSRF binding but no
// user, as the app's own logout leaves it when it deletes only its user key:
// the impersonation ends, and the record and the binding go, so that a later
// sign-in on this browser is neither taken for the old impersonation nor
// given the old session's tokens.
func (p *Plugin) dropRecord(c *gin.Context, gs *gsessions.Session, raw any) error {
	if encoded, ok := raw.(string); ok {
		if rec, err := p.keys.decode(encoded); err == nil {
			if _, err := p.endEntries(c, Selector{ID: rec.ID}, CauseLogout, "the app signed the user out"); err != nil {
				return err
			}
		}
	}
	delete(gs.Values, p.recordKey)
	delete(gs.Values, p.csrfKey)
	if err := gs.Save(c.Request, c.Writer); err != nil {
		return fmt.Errorf("%w: removing a stale record: %w", ErrSessionStore, err)
	}
	return nil
}

// newValues returns the values of a fresh session: a flash message if one
// is given, nothing else.
func (p *Plugin) newValues(flash string) map[any]any {
	values := map[any]any{}
	if flash != "" {
		values[p.opts.FlashKey] = []any{flash}
	}
	return values
}

// sessionID turns the value an app keeps under SessionKey into a string ID:
// a string or an integer (of a named type too), or what a fmt.Stringer
// says; "" for anything else.
func sessionID(v any) string {
	switch id := v.(type) {
	case string:
		return id
	case nil:
		return ""
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	}
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return ""
}

// storedID returns the value to write under SessionKey for the user id:
// StoreUserID's, or id as the same Go type as sample, the value the app
// keeps there now.
func (p *Plugin) storedID(sample any, id string) (any, error) {
	if p.opts.StoreUserID != nil {
		v, err := p.opts.StoreUserID(id)
		if err != nil {
			return nil, fmt.Errorf("%w: Options.StoreUserID(%q): %w", ErrUserStore, id, err)
		}
		return v, nil
	}
	v, err := mirrorID(sample, id)
	if err != nil {
		return nil, fmt.Errorf("%w: the app keeps a %T under Options.SessionKey %q: %w", ErrSessionValue, sample, p.opts.SessionKey, err)
	}
	return v, nil
}

// mirrorID converts id to the Go type of sample: a string or an integer
// type, named or not.
func mirrorID(sample any, id string) (any, error) {
	if _, ok := sample.(string); ok {
		return id, nil
	}
	t := reflect.TypeOf(sample)
	if t == nil {
		return nil, errors.New("there is no value to take the type from")
	}
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.String:
		v.SetString(id)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(id, 10, t.Bits())
		if err != nil {
			return nil, fmt.Errorf("the user ID %q does not fit that type", id)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(id, 10, t.Bits())
		if err != nil {
			return nil, fmt.Errorf("the user ID %q does not fit that type", id)
		}
		v.SetUint(n)
	default:
		return nil, errors.New("only strings and integers can be mirrored")
	}
	return v.Interface(), nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// onceSet remembers keys, to do something only the first time this instance
// sees each; it forgets everything when it holds maxOnce of them.
type onceSet struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

const maxOnce = 4096

// first reports whether key is new, and remembers it.
func (o *onceSet) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[key]; ok {
		return false
	}
	if o.seen == nil || len(o.seen) >= maxOnce {
		o.seen = map[string]struct{}{}
	}
	o.seen[key] = struct{}{}
	return true
}
