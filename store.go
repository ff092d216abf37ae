package loginas

import (
	"context"
	"time"
)

// Entry is what a Store keeps of one impersonation: who, as whom, since and
// until when, why, and, once it is over, when and how it ended.
type Entry struct {
	ID         string // names the impersonation; its audit events share it
	ActorID    string
	ActorName  string
	TargetID   string
	TargetName string
	Reason     string
	Started    time.Time
	Deadline   time.Time
	// Ended is when the impersonation ended; zero while it is live.
	Ended time.Time
	// Cause says how it ended; empty while it is live.
	Cause Cause
}

// Live reports whether the impersonation is still going on at now: not
// ended, and its deadline not reached.
func (e Entry) Live(now time.Time) bool {
	return e.Ended.IsZero() && now.Before(e.Deadline)
}

// Selector picks the entries that Store.End ends. Exactly one field is set.
type Selector struct {
	ID       string // the one impersonation with this ID, whatever its deadline
	ActorID  string // every live impersonation this actor started
	TargetID string // every live impersonation of this target's account
}

// picks reports whether sel picks e, whatever e's deadline.
func (sel Selector) picks(e Entry) bool {
	return sel.ID != "" && e.ID == sel.ID ||
		sel.ActorID != "" && e.ActorID == sel.ActorID ||
		sel.TargetID != "" && e.TargetID == sel.TargetID
}

// Store keeps the impersonations where every instance of the app sees them.
// The plugin writes an entry when an impersonation starts and marks it ended
// when it ends, and it honours an impersonated session only while the
// session's entry is live. So an impersonation that ended, on any instance
// and for any reason, stays ended: a copy of its cookie, a session that a
// concurrent request saved back, or a process that restarted cannot bring it
// back. EndAll, End and the person's own "end access" go through the store
// too, without comparing the clocks of different machines.
//
// NewMemoryStore keeps it in the process's memory: enough for one instance.
// Several instances share one store: the sqlstore module (SQLite,
// PostgreSQL) and the redisstore module (Redis) provide it. An app may
// implement it on its own database. Methods must be safe for concurrent use.
type Store interface {
	// Start records a new live impersonation. Its ID is random and never
	// used twice.
	Start(ctx context.Context, e Entry) error

	// Entry returns the entry with the given ID, or ErrNoEntry. It is asked
	// on every impersonated request. A store may drop an entry some time
	// after its deadline, since the plugin refuses the impersonation then
	// anyway; keeping it a while (CheckStore expects at least 30 seconds)
	// lets the first request after the deadline record the expiry. The
	// memory store keeps it a minute, redisstore Options.Grace (a minute by
	// default), sqlstore Options.Retention (for good by default).
	Entry(ctx context.Context, id string) (Entry, error)

	// End marks the entries that sel picks and that have not ended yet as
	// ended at the given time, with cause, and returns them as they are now.
	// Entries that had already ended are left as they were and are not
	// returned: when two calls race for one entry, exactly one returns it.
	// With Selector.ActorID or TargetID it picks only entries whose deadline
	// is after at.
	End(ctx context.Context, sel Selector, cause Cause, at time.Time) ([]Entry, error)

	// Live returns the impersonations live at now, newest first, at most
	// limit: those of targetID's account, or every one when targetID is "".
	Live(ctx context.Context, targetID string, now time.Time, limit int) ([]Entry, error)
}

// History is where the people whose accounts were used read about it: each
// one's access history, and the one-time notices after an impersonation of
// their account ended. Options.History names it. The memory store and the
// sqlstore module provide it; an app may implement it on its own database.
type History interface {
	// Record stores e, once when the impersonation starts (e.Ended is zero)
	// and again, under the same ID, when it ends. The plugin does not call
	// it when the History is also the Store: the store's Start and End
	// record the same.
	Record(ctx context.Context, e Entry) error

	// History returns the impersonations of targetID's account that started
	// before before (any, when before is zero), newest first, at most limit;
	// live ones have a zero Ended.
	History(ctx context.Context, targetID string, before time.Time, limit int) ([]Entry, error)

	// TakeNotices returns the impersonations of targetID's account that have
	// ended and that the person has not been told about yet, newest first,
	// and marks them told: no later call, on any instance, returns them
	// again. Those that ended with CauseFailed never began and are left out.
	TakeNotices(ctx context.Context, targetID string) ([]Entry, error)
}

// Consents keeps the grants with which people allow their account to be
// used, for Options.RequireConsent. The memory store and both store modules
// provide it.
type Consents interface {
	// SetConsent records that targetID allows impersonation until the given
	// time; the zero time withdraws the grant.
	SetConsent(ctx context.Context, targetID string, until time.Time) error
	// Consent returns until when targetID allows impersonation, or the zero
	// time when there is no grant.
	Consent(ctx context.Context, targetID string) (time.Time, error)
}
