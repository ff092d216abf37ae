package loginas

import "errors"

// The sentinel errors of the package. FindUser and Store implementations
// return the first two; the plugin wraps the others around the failure of a
// store, and Options.ErrorHandler receives them (test with errors.Is) for
// its 5xx answers. Its 4xx answers get a *Refusal instead.
var (
	// ErrUserNotFound is what Options.FindUser returns when no user has the
	// given ID. Any other error is a failure of the user store.
	ErrUserNotFound = errors.New("loginas: user not found")

	// ErrNoEntry is what Store.Entry returns for an ID it does not know.
	ErrNoEntry = errors.New("loginas: no such impersonation")

	// ErrBadID is what ParseID returns for a value that cannot be a user ID.
	ErrBadID = errors.New("loginas: malformed user ID")

	// ErrNoSessions means the gin-contrib/sessions middleware did not run
	// before the plugin's: add router.Use(sessions.Sessions(...)) before
	// Register. Answered with 500.
	ErrNoSessions = errors.New("loginas: no session on this request: add router.Use(sessions.Sessions(name, store)) before loginas.Register")

	// ErrUserStore means Options.FindUser failed for a reason other than
	// ErrUserNotFound. Answered with 500.
	ErrUserStore = errors.New("loginas: user lookup failed")

	// ErrSessionStore means the session store failed to load or save a
	// session. Answered with 503.
	ErrSessionStore = errors.New("loginas: session store failed")

	// ErrStore means Options.Store (or History, or Consents) failed.
	// Answered with 503.
	ErrStore = errors.New("loginas: impersonation store failed")

	// ErrAudit means the audit sink failed to record the start of an
	// impersonation, so the switch was not made. Answered with 500.
	ErrAudit = errors.New("loginas: audit sink failed")

	// ErrSessionValue means the value the app keeps under
	// Options.SessionKey has a type the plugin cannot write a user ID as:
	// set Options.StoreUserID. Answered with 500.
	ErrSessionValue = errors.New("loginas: the value under Options.SessionKey has a type the plugin cannot write an ID as; set Options.StoreUserID")

	// errMiddlewareMissing means a handler ran without the plugin's
	// middleware. Answered with 500.
	errMiddlewareMissing = errors.New("loginas: the loginas middleware did not run on this request: use Register, or router.Use(p.Middleware()) before the routes")
)
