package loginas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	DefaultCSRFField       = "loginas_csrf"
	DefaultCSRFHeader      = "X-Loginas-CSRF"
)

// User is what the plugin needs to know about an account. The app's FindUser
// fills it in from its own user model.
type User struct {
	// ID identifies the user; it is the :id of the login-as route and the
	// value kept under Options.SessionKey.
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
	// Data carries the app's own user value to the permission hooks. The
	// plugin never reads it.
	Data any
}

// ErrUserNotFound is what Options.FindUser returns when no user has the
// given ID. Any other error is treated as a failure of the user store.
var ErrUserNotFound = errors.New("loginas: user not found")

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

	// Prefix is where the two routes are mounted. If empty, DefaultPrefix.
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

	// UpdateLastLogin, if set, is called for the target on a switch and for
	// the actor on return, before the session is saved; an error aborts
	// with 500 and changes nothing. If nil, "last login" is left alone.
	UpdateLastLogin func(c *gin.Context, user User) error

	// DisplayName returns the name shown for a user in messages, the banner
	// and the audit trail. If nil, User.Name, or User.ID when Name is empty.
	DisplayName func(user User) string

	// StoreUserID converts a user ID into the value written under
	// SessionKey, for apps that keep a number there. If nil, the string ID
	// is stored. Whatever it returns must be readable by the app and
	// encodable by its session store (plain ints and strings are).
	StoreUserID func(id string) (any, error)

	// Messages are the texts shown to people, per language. If nil,
	// DefaultMessages. See Messages for the catalog and Language.
	Messages Catalog

	// Language picks the language of a request's messages. If nil, the
	// first Accept-Language entry that Messages has, else English.
	Language func(c *gin.Context) string

	// Audit receives every start, end and refusal. An error while
	// recording a start aborts the switch (no impersonation without a
	// trail); errors for other events are logged. If nil, events are
	// written to Logger.
	Audit func(c *gin.Context, event Event) error

	// Logger receives the default audit events and internal errors. If
	// nil, slog.Default().
	Logger *slog.Logger

	// TrustedOrigins are extra origins (scheme://host[:port]) allowed to
	// post to the routes, for example an admin front end on another host.
	TrustedOrigins []string

	// ExternalCSRF turns off the plugin's own CSRF token, for apps whose own
	// CSRF middleware already protects these routes. The cross-origin check
	// stays on.
	ExternalCSRF bool

	// SkipRevalidation turns off the per-request check that the actor may
	// still impersonate the target. On by default; turning it off means a
	// revoked admin keeps an impersonation until its time limit.
	SkipRevalidation bool

	// Revocations, if set, is consulted on every impersonated request so
	// that Plugin.EndAll can end an actor's impersonations on every
	// instance. If nil, EndAll is unavailable.
	Revocations Revocations

	// ReadOnly refuses every unsafe method (anything but GET, HEAD and
	// OPTIONS) from an impersonated session, except the logout route.
	ReadOnly bool

	// ErrorHandler writes every answer that is not a redirect or a success:
	// 4xx answers (err is then a *Refusal whose Message is meant for the
	// person) and 5xx failures of a user store, session store or audit sink
	// (err says what failed; do not show it). If nil, a short text body, or
	// {"error": "..."} for clients that accept JSON.
	ErrorHandler func(c *gin.Context, status int, err error)

	// RecordKey is the session key of the impersonation record. If empty,
	// DefaultRecordKey. A return also writes RecordKey+".nonce", a random
	// value that gives the restored session a CSRF token of its own.
	RecordKey string

	// FlashKey is the flash key messages are added under. If empty, the
	// gin-contrib/sessions default ("_flash").
	FlashKey string

	// Clock returns the current time. If nil, time.Now. Tests set it.
	Clock func() time.Time
}

// Plugin is a registered instance. Its methods build template data, guard
// routes and restore the actor from the app's own logout handler.
type Plugin struct {
	opts      Options
	keys      *signer
	origins   *http.CrossOriginProtection
	loginPath string
	logoutURL string
	// csrfKeys derive sessions' CSRF secrets: the current key first, then
	// one for each previous secret.
	csrfKeys [][]byte
	// The session keys as interface values, converted once: converting a
	// string to an interface on every request allocates.
	sessionKey, recordKey, nonceKey any
	// localEnded keeps ended impersonation IDs when Options.Revocations
	// does not.
	localEnded *memoryRevocations
}

// Register validates opts, installs the middleware that sets
// "is_impersonated" on every request, and mounts POST {Prefix}/:id and POST
// {Prefix}/logout on router. Call it after the sessions middleware and before
// the app's own routes: routes added earlier would not see the middleware.
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
	p.mount(router)
	return p, nil
}

// New validates opts and returns a plugin without touching a router. Most
// apps call Register instead; New is for mounting the middleware and
// handlers by hand (Middleware, LoginAsHandler, LogoutHandler).
func New(opts Options) (*Plugin, error) {
	if err := opts.fillAndValidate(); err != nil {
		return nil, err
	}
	origins := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := origins.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("loginas: Options.TrustedOrigins: %w", err)
		}
	}
	keys := newSigner(opts.Secret, opts.PreviousSecrets)
	return &Plugin{
		opts:       opts,
		keys:       keys,
		origins:    origins,
		loginPath:  opts.Prefix + "/",
		logoutURL:  opts.Prefix + "/logout",
		sessionKey: opts.SessionKey,
		recordKey:  opts.RecordKey,
		nonceKey:   opts.RecordKey + ".nonce",
		csrfKeys:   deriveKeys(opts.Secret, opts.PreviousSecrets, "csrf"),
		localEnded: newMemoryRevocations(opts.Clock),
	}, nil
}

func (o *Options) fillAndValidate() error {
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
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") || strings.ContainsAny(o.Prefix, ":*?#") {
		problems = append(problems, fmt.Sprintf("Options.Prefix %q must start with / and end without one, with no :, *, ? or #", o.Prefix))
	}
	for _, u := range []struct {
		name  string
		value *string
	}{
		{"RedirectURL", &o.RedirectURL},
		{"LogoutRedirectURL", &o.LogoutRedirectURL},
		{"RefusalRedirectURL", &o.RefusalRedirectURL},
	} {
		if *u.value == "" {
			*u.value = "/"
		}
		if !IsLocalURL(*u.value) {
			problems = append(problems, fmt.Sprintf("Options.%s %q must be a local path such as /admin/", u.name, *u.value))
		}
	}
	if o.LoginURL != "" && !IsLocalURL(o.LoginURL) {
		problems = append(problems, fmt.Sprintf("Options.LoginURL %q must be a local path such as /login", o.LoginURL))
	}
	if o.MaxDuration < 0 {
		problems = append(problems, fmt.Sprintf("Options.MaxDuration must not be negative (got %s)", o.MaxDuration))
	}
	if o.MaxDuration == 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.MaxReasonLength < 0 {
		problems = append(problems, fmt.Sprintf("Options.MaxReasonLength must not be negative (got %d)", o.MaxReasonLength))
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
	if o.StoreUserID == nil {
		o.StoreUserID = func(id string) (any, error) { return id, nil }
	}
	if o.Messages == nil {
		o.Messages = DefaultMessages()
	}
	if catalog, err := o.Messages.complete(); err != nil {
		problems = append(problems, err.Error())
	} else {
		o.Messages = catalog
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
	if o.RecordKey == o.SessionKey {
		problems = append(problems, "Options.SessionKey and RecordKey must differ")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if len(problems) > 0 {
		return errors.New("loginas: invalid options:\n  - " + strings.Join(problems, "\n  - "))
	}
	return nil
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

func defaultErrorHandler(c *gin.Context, status int, err error) {
	text := http.StatusText(status)
	var r *Refusal
	if errors.As(err, &r) {
		text = r.Message
	}
	if wantsJSON(c.Request) {
		c.AbortWithStatusJSON(status, gin.H{"error": text})
		return
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Header("X-Content-Type-Options", "nosniff")
	c.AbortWithStatus(status)
	_, _ = c.Writer.WriteString(text + "\n")
}
