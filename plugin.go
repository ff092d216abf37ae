package loginas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// MinSecretLength is the shortest secret Register accepts, in bytes.
const MinSecretLength = 32

// Defaults used when the matching Options field is left at its zero value.
const (
	DefaultPrefix          = "/admin/loginas"
	DefaultMaxDuration     = time.Hour
	DefaultMaxReasonLength = 500
	DefaultRecordKey       = "loginas.record"
	DefaultFlashKey        = "_flash" // gin-contrib/sessions' own default
)

// DefaultConsentDurations are the periods a person may grant access for
// when Options.ConsentDurations is empty: an hour, a day and a week.
var DefaultConsentDurations = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// Names of the fields the plugin reads from forms and JSON bodies, and of
// the header that may carry the CSRF token instead.
const (
	CSRFField  = "loginas_csrf"
	CSRFHeader = "X-Loginas-CSRF"
)

// User is what the plugin needs to know about an account. The app's FindUser
// fills it in from its own user model.
type User struct {
	// ID identifies the user. FindUser may find a user under another
	// spelling of the ID ("01" for "1"); the ID it returns is the one the
	// plugin uses everywhere: in the record, the rules, the hooks, the
	// session, the audit trail and the headers.
	ID string
	// Name is the display name used in messages, the banner and the audit
	// trail (unless Options.DisplayName says otherwise).
	Name string
	// Superuser marks an account with every right. The default permission
	// rule lets only superusers log in as others, and superusers cannot be
	// logged in as unless Options.AllowSuperuserTargets is set.
	Superuser bool
	// Active must be true for a user who may sign in. Disabled users can
	// neither be logged in as nor act as an impersonator. The zero value
	// (false) means disabled, so a FindUser that forgets to set it fails
	// closed.
	Active bool
	// Data carries the app's own user value. The plugin never reads it; the
	// hooks get it, and so does the app through Current(c), which saves it
	// loading the users of an impersonated request again.
	Data any
}

// Options configures the plugin. FindUser, SessionKey and Secret are
// required; every other field has a documented default for its zero value.
type Options struct {
	// FindUser loads a user by ID. It returns ErrUserNotFound (or an error
	// wrapping it) when there is no such user. Required.
	FindUser func(ctx context.Context, id string) (User, error)

	// SessionKey is the gin-contrib/sessions key under which the app keeps
	// the signed-in user's ID. Required.
	SessionKey string

	// Secret signs impersonation records and CSRF tokens. At least
	// MinSecretLength bytes, kept out of source control. Required.
	Secret []byte

	// PreviousSecrets are older secrets that are still accepted when
	// verifying, so a secret can be rotated without ending every
	// impersonation. Each must also be at least MinSecretLength bytes.
	PreviousSecrets [][]byte

	// Prefix is where the routes are mounted. If empty, DefaultPrefix.
	Prefix string

	// RedirectURL is where a successful switch goes when the form sends no
	// usable next value. If empty, "/".
	RedirectURL string

	// LogoutRedirectURL is where the logout route goes when the form sends
	// no usable next value. If empty, "/".
	LogoutRedirectURL string

	// RefusalRedirectURL is where a refused browser request goes when its
	// Referer is missing or not of this site. If empty, "/".
	RefusalRedirectURL string

	// LoginURL, if set, is where an anonymous browser request to the
	// login-as route is sent (303) instead of receiving 401. With the
	// plugin's own CSRF token an anonymous visitor has no token and gets 403
	// first, so this applies with ExternalCSRF.
	LoginURL string

	// MaxDuration is how long an impersonation may last before the session
	// is signed out. If zero, DefaultMaxDuration (one hour).
	MaxDuration time.Duration

	// MaxDurationFor, if set, returns the time limit for one actor; a
	// result of zero or less falls back to MaxDuration.
	MaxDurationFor func(c *gin.Context, actor User) time.Duration

	// CanImpersonate says whether an actor may log in as anybody at all.
	// Actors refused here learn nothing about which IDs exist. If nil, only
	// superusers may.
	CanImpersonate func(c *gin.Context, actor User) bool

	// CanLoginAs says whether actor may log in as target. It runs after
	// CanImpersonate and the hard rules (never oneself, never a disabled
	// user, never a superuser unless AllowSuperuserTargets). A nil result
	// allows; Refuse("text") refuses and shows the text; any other error
	// refuses with the generic message. If nil, every target passing the
	// hard rules is allowed.
	CanLoginAs func(c *gin.Context, actor, target User) error

	// AllowSuperuserTargets lets actors log in as superusers. Off by
	// default.
	AllowSuperuserTargets bool

	// ReasonRequired refuses a switch whose reason field is empty or only
	// white space.
	ReasonRequired bool

	// MaxReasonLength caps the reason, in characters. If zero,
	// DefaultMaxReasonLength.
	MaxReasonLength int

	// UpdateLastLogin, if set, is called for the target once a switch is
	// made, and for the actor once a return is made. An error is logged; it
	// does not undo the switch. If nil, "last login" is left alone.
	UpdateLastLogin func(c *gin.Context, user User) error

	// DisplayName returns the name shown for a user in messages, the banner
	// and the audit trail. If nil, User.Name, or User.ID when Name is empty.
	// Control and bidirectional-override characters are dropped from it.
	DisplayName func(user User) string

	// StoreUserID converts a user ID into the value written under
	// SessionKey. If nil, the plugin writes the ID as the same Go type as
	// the value the app keeps there (string, or any integer type), so an
	// app that keeps a uint reads a uint back; a value of another type
	// refuses the switch with ErrSessionValue. Whatever it returns must be
	// readable by the app and encodable by its session store.
	StoreUserID func(id string) (any, error)

	// Messages are the texts shown to people, per language. If nil,
	// DefaultMessages. See Messages for the catalog and Language.
	Messages Catalog

	// Language picks the language of a request's messages. If nil, the
	// first Accept-Language entry that Messages has, else English.
	Language func(c *gin.Context) string

	// Audit receives every start, end, refusal and consent. ctx is the
	// request's *gin.Context when there is a request (End and EndAll may be
	// called without one). An error while recording a start aborts the
	// switch (no impersonation without a trail); errors for other events are
	// logged. Requests made without a signed-in user are not audited one by
	// one: Logger gets a count of them at most once a minute. If nil, events
	// are written to Logger.
	Audit func(ctx context.Context, event Event) error

	// Logger receives the default audit events, internal errors and, at
	// debug level, why a button is hidden or a request refused. If nil,
	// slog.Default().
	Logger *slog.Logger

	// TrustedOrigins are extra origins (scheme://host[:port]) allowed to
	// post to the routes, for example an admin front end on another host.
	TrustedOrigins []string

	// ExternalCSRF turns off the plugin's own CSRF token, for apps whose own
	// CSRF middleware already protects these routes. The cross-origin check
	// stays on, but it lets through requests that carry neither an Origin
	// nor a Sec-Fetch-Site header, as non-browser clients send them: with
	// ExternalCSRF the app's middleware must refuse those itself.
	ExternalCSRF bool

	// SkipRevalidation turns off the per-request check that the actor may
	// still impersonate the target. On by default; turning it off means a
	// revoked admin keeps an impersonation until its time limit.
	SkipRevalidation bool

	// Store keeps the impersonations, so that one that ended stays ended and
	// EndAll, End and the person's own end reach every instance that shares
	// it. If nil, NewMemoryStore: one instance only, and a restart ends every
	// impersonation. Several instances need a shared store (the sqlstore and
	// redisstore modules).
	Store Store

	// EntryCache lets this instance reuse a live entry it read from the
	// Store for this long before asking the Store again, so that an
	// impersonated request need not make a round trip to a shared store.
	// An end made through this instance takes effect on it at once; an end
	// made on another instance (its return, EndAll, End, the person's own
	// end, a withdrawn consent) takes effect here within EntryCache, and a
	// copy of an ended session's cookie stays usable on this instance for
	// that long. If zero, the Store is asked on every impersonated request.
	// At most MaxEntryCache.
	EntryCache time.Duration

	// History is where the people impersonated read their access history
	// and the notices after an impersonation of their account. If nil, the
	// Store when it implements History (the memory store and sqlstore do);
	// otherwise the history and the notices are empty.
	History History

	// CanManage says whether a user may see every live impersonation and
	// end any of them. If nil, whoever CanImpersonate allows.
	CanManage func(c *gin.Context, user User) bool

	// ActorLabel, if set, is shown to the people impersonated instead of
	// the actor's name, such as "Acme support", for apps that keep their
	// staff's names private. The audit trail keeps the real name.
	ActorLabel string

	// SkipEndNotices turns off the one-time notice that tells a person, on
	// their next page, that their account was used.
	SkipEndNotices bool

	// Notify, if set, is called when an impersonation of a person's account
	// starts (Entry.Ended is zero) and when it ends, so the app can tell the
	// person by its own channel (e-mail, chat). The entry's ActorName is
	// ActorLabel when that is set. It runs on the request that started or
	// ended the impersonation: hand slow work to a goroutine.
	Notify func(ctx context.Context, e Entry)

	// RequireConsent refuses a switch unless the target has granted access
	// to their account (the "loginas/consent" partial) for a period that has
	// not run out; the grant also caps the impersonation's deadline, and
	// withdrawing it ends the live impersonations of that person. The Store
	// (or History) must implement Consents.
	RequireConsent bool

	// ConsentDurations are the periods a person may grant access for. If
	// empty, DefaultConsentDurations.
	ConsentDurations []time.Duration

	// ReadOnly refuses every unsafe method (anything but GET, HEAD and
	// OPTIONS) from an impersonated session, except the routes that end it:
	// the plugin's logout route and routes that use ReturnRoute.
	ReadOnly bool

	// ErrorHandler writes every 4xx and 5xx answer: refusals (err is then a
	// *Refusal whose Message is meant for the person) and failures of a
	// user store, session store, Store or audit sink (err wraps one of the
	// sentinel errors; do not show it). If nil, a short text body, or
	// {"error": "..."} for clients that accept JSON (see WantsJSON).
	ErrorHandler func(c *gin.Context, status int, err error)

	// RecordKey is the session key of the impersonation record. If empty,
	// DefaultRecordKey. The plugin also keeps RecordKey+".csrf", the random
	// value that CSRF tokens are bound to.
	RecordKey string

	// FlashKey is the flash key messages are added under. If empty,
	// DefaultFlashKey, gin-contrib/sessions' own default.
	FlashKey string

	// Clock returns the current time. If nil, time.Now. Tests set it.
	Clock func() time.Time
}

// Plugin is a registered instance. Its methods mount the handlers by hand,
// guard routes, end impersonations and restore the actor from the app's own
// logout handler.
type Plugin struct {
	opts    Options
	keys    *signer
	origins *http.CrossOriginProtection
	// csrfKeys derive sessions' CSRF secrets: the current key first, then
	// one for each previous secret.
	csrfKeys [][]byte
	routes   routePaths
	// The session keys as interface values, converted once: converting a
	// string to an interface on every request allocates.
	sessionKey, recordKey, csrfKey any
	consents                       Consents // nil unless the Store or History has it
	// separateHistory says the History is not the Store, so it hears of
	// every start and end itself.
	separateHistory bool
	// started is when this instance was made: a record older than that and
	// unknown to an in-memory Store is one the restart ended.
	started time.Time
	// quiet rate-limits what Logger hears about requests without a user.
	quiet *rateLog
	// reported remembers the ends audited without a Store entry, so that a
	// replayed cookie is audited once.
	reported onceSet
	// exempt names the handlers ReadOnly lets through.
	exempt map[string]bool
	// entries caches live entries for Options.EntryCache; nil when it is
	// zero.
	entries *entryCache
}

// Register validates opts, installs the middleware that sets
// "is_impersonated" on every request, and mounts the routes on router (see
// the README's route table). Call it after the sessions middleware and
// before the app's own routes: routes added earlier would not see the
// middleware.
func Register(router *gin.Engine, opts Options) (*Plugin, error) {
	if router == nil {
		return nil, errors.New("loginas: Register needs a *gin.Engine, got nil")
	}
	p, err := New(opts)
	if err != nil {
		return nil, err
	}
	if routes := router.Routes(); len(routes) > 0 {
		return nil, fmt.Errorf("loginas: Register must be called before routes are added (found %s %s): "+
			"routes added earlier would not see is_impersonated", routes[0].Method, routes[0].Path)
	}
	router.Use(p.Middleware())
	p.Mount(router)
	return p, nil
}

// New validates opts and returns a plugin without touching a router. Most
// apps call Register instead; New is for mounting the middleware and
// handlers by hand (Middleware, then Mount, or LoginAsHandler and
// LogoutHandler).
func New(opts Options) (*Plugin, error) {
	opts.fillDefaults()
	origins := http.NewCrossOriginProtection()
	problems := opts.validate()
	for _, o := range opts.TrustedOrigins {
		if err := origins.AddTrustedOrigin(o); err != nil {
			problems = append(problems, fmt.Sprintf("Options.TrustedOrigins: %v", err))
		}
	}
	consents, _ := opts.Store.(Consents)
	if consents == nil {
		consents, _ = opts.History.(Consents)
	}
	if opts.RequireConsent && consents == nil {
		problems = append(problems, fmt.Sprintf("Options.RequireConsent needs a Store or History that implements loginas.Consents (%T does not)", opts.Store))
	}
	if len(problems) > 0 {
		return nil, errors.New("loginas: invalid options:\n  - " + strings.Join(problems, "\n  - "))
	}
	p := &Plugin{
		opts:            opts,
		keys:            newSigner(opts.Secret, opts.PreviousSecrets),
		origins:         origins,
		csrfKeys:        deriveKeys(opts.Secret, opts.PreviousSecrets, "csrf"),
		routes:          newRoutePaths(opts.Prefix, opts.RequireConsent),
		sessionKey:      opts.SessionKey,
		recordKey:       opts.RecordKey,
		csrfKey:         opts.RecordKey + ".csrf",
		consents:        consents,
		separateHistory: opts.History != nil && !sameValue(opts.History, opts.Store),
		started:         opts.Clock(),
		quiet:           newRateLog(opts.Logger, time.Minute),
		entries:         newEntryCache(opts.EntryCache),
	}
	p.exempt = map[string]bool{handlerName(p.logout): true, handlerName(p.returnRoute): true}
	return p, nil
}

// sameValue reports whether a and b hold the same value, without the panic
// of == on values of a type that cannot be compared (a struct holding a
// map, say).
func sameValue(a, b any) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.ValueOf(a).Comparable() && a == b
}

// fillDefaults replaces zero values with their documented defaults.
func (o *Options) fillDefaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	for _, u := range []*string{&o.RedirectURL, &o.LogoutRedirectURL, &o.RefusalRedirectURL} {
		if *u == "" {
			*u = "/"
		}
	}
	if o.MaxDuration == 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.MaxReasonLength == 0 {
		o.MaxReasonLength = DefaultMaxReasonLength
	}
	if o.CanImpersonate == nil {
		o.CanImpersonate = SuperusersOnly
	}
	if o.DisplayName == nil {
		o.DisplayName = defaultDisplayName
	}
	if o.Messages == nil {
		o.Messages = DefaultMessages()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = SlogAudit(o.Logger)
	}
	if o.ErrorHandler == nil {
		o.ErrorHandler = defaultErrorHandler
	}
	if o.RecordKey == "" {
		o.RecordKey = DefaultRecordKey
	}
	if o.FlashKey == "" {
		o.FlashKey = DefaultFlashKey
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Store == nil {
		o.Store = newMemoryStore(o.Clock)
	}
	if o.History == nil {
		o.History, _ = o.Store.(History)
	}
	if len(o.ConsentDurations) == 0 {
		o.ConsentDurations = DefaultConsentDurations
	}
}

// validate returns every problem with the (filled) options, each saying
// what to do.
func (o *Options) validate() []string {
	var problems []string
	if o.FindUser == nil {
		problems = append(problems, "Options.FindUser is required: a func(ctx, id) (loginas.User, error) that loads a user by ID")
	}
	if strings.TrimSpace(o.SessionKey) == "" {
		problems = append(problems, "Options.SessionKey is required: the session key under which the app keeps the signed-in user's ID")
	}
	if len(o.Secret) < MinSecretLength {
		problems = append(problems, fmt.Sprintf("Options.Secret must be at least %d random bytes (got %d): generate one with `openssl rand -base64 48`", MinSecretLength, len(o.Secret)))
	}
	for i, s := range o.PreviousSecrets {
		if len(s) < MinSecretLength {
			problems = append(problems, fmt.Sprintf("Options.PreviousSecrets[%d] must be at least %d bytes (got %d)", i, MinSecretLength, len(s)))
		}
	}
	if !strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") || strings.ContainsAny(o.Prefix, ":*?#") {
		problems = append(problems, fmt.Sprintf("Options.Prefix %q must start with / and end without one, with no :, *, ? or #", o.Prefix))
	}
	for name, u := range map[string]string{"RedirectURL": o.RedirectURL, "LogoutRedirectURL": o.LogoutRedirectURL, "RefusalRedirectURL": o.RefusalRedirectURL} {
		if !IsLocalURL(u) {
			problems = append(problems, fmt.Sprintf("Options.%s %q must be a local path such as /admin/", name, u))
		}
	}
	if o.LoginURL != "" && !IsLocalURL(o.LoginURL) {
		problems = append(problems, fmt.Sprintf("Options.LoginURL %q must be a local path such as /login", o.LoginURL))
	}
	if o.MaxDuration < 0 {
		problems = append(problems, fmt.Sprintf("Options.MaxDuration must not be negative (got %s)", o.MaxDuration))
	}
	if o.MaxReasonLength < 0 {
		problems = append(problems, fmt.Sprintf("Options.MaxReasonLength must not be negative (got %d)", o.MaxReasonLength))
	}
	if o.EntryCache < 0 || o.EntryCache > MaxEntryCache {
		problems = append(problems, fmt.Sprintf("Options.EntryCache must be between 0 and %s (got %s): an end made on another instance takes effect on this one only after it", MaxEntryCache, o.EntryCache))
	}
	for _, d := range o.ConsentDurations {
		if d <= 0 {
			problems = append(problems, fmt.Sprintf("Options.ConsentDurations must all be positive (got %s)", d))
		}
	}
	if catalog, err := o.Messages.complete(); err != nil {
		problems = append(problems, err.Error())
	} else {
		o.Messages = catalog
	}
	if o.RecordKey == o.SessionKey {
		problems = append(problems, "Options.SessionKey and RecordKey must differ")
	}
	slices.Sort(problems)
	return problems
}

// SuperusersOnly is the default CanImpersonate rule: only active
// superusers may log in as others.
func SuperusersOnly(_ *gin.Context, actor User) bool {
	return actor.Superuser && actor.Active
}

func defaultDisplayName(u User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}

// name is the display name of u as the plugin shows it: cleaned of control
// and bidirectional-override characters, and capped.
func (p *Plugin) name(u User) string {
	return cleanText(p.opts.DisplayName(u), maxNameLength, false)
}

// defaultErrorHandler writes {"error": ...} for JSON clients and a short
// text otherwise: the Refusal's message for refusals, the status text for
// failures.
func defaultErrorHandler(c *gin.Context, status int, err error) {
	text := http.StatusText(status)
	var r *Refusal
	if errors.As(err, &r) {
		text = r.Message
	}
	if WantsJSON(c) {
		c.AbortWithStatusJSON(status, gin.H{"error": text})
		return
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Header("X-Content-Type-Options", "nosniff")
	c.AbortWithStatus(status)
	_, _ = c.Writer.WriteString(text + "\n")
}
