package loginas

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Revocations keeps, where every instance of the app can read it, the moment
// before which an actor's impersonations count as ended. The app implements
// it on its shared database so that EndAll on one instance ends the
// impersonations served by all of them, whatever the session store.
type Revocations interface {
	// EndAll records that every impersonation actorID started at or before
	// at is over.
	EndAll(ctx context.Context, actorID string, at time.Time) error
	// EndedAt returns the latest moment recorded by EndAll for actorID, or
	// the zero time when there is none.
	EndedAt(ctx context.Context, actorID string) (time.Time, error)
}

// EndedImpersonations is an optional extension of Revocations. It keeps the
// IDs of single impersonations that have ended, until their deadline. The
// plugin writes one on every end and refuses its record afterwards, so a
// session that a request still running at the return saves back into the
// store stays ended. When Options.Revocations implements it, that holds on
// every instance; otherwise the plugin keeps the IDs in its own memory,
// which covers one instance.
type EndedImpersonations interface {
	// EndImpersonation records that the impersonation id is over. The
	// entry may be dropped after until, the record's deadline.
	EndImpersonation(ctx context.Context, id string, until time.Time) error
	// ImpersonationEnded reports whether EndImpersonation recorded id.
	ImpersonationEnded(ctx context.Context, id string) (bool, error)
}

// ErrRevocations means Options.Revocations failed to answer.
var ErrRevocations = errors.New("loginas: revocation store failed")

// EndAll ends every impersonation that actorID has started so far, on every
// instance that shares Options.Revocations: each one is signed out on its
// next request (audited as end, cause ended). The actor's own session is
// untouched, and new impersonations may start afterwards.
func (p *Plugin) EndAll(ctx context.Context, actorID string) error {
	if p.opts.Revocations == nil {
		return errors.New("loginas: EndAll needs Options.Revocations (use loginas.NewMemoryRevocations for a single instance)")
	}
	if err := ParseID(actorID); err != nil {
		return err
	}
	if err := p.opts.Revocations.EndAll(ctx, actorID, p.opts.Clock()); err != nil {
		return fmt.Errorf("%w: %w", ErrRevocations, err)
	}
	return nil
}

// endedBy reports whether EndAll has ended an impersonation by actorID that
// began at started.
func (p *Plugin) endedBy(ctx context.Context, actorID string, started time.Time) (bool, error) {
	if p.opts.Revocations == nil {
		return false, nil
	}
	at, err := p.opts.Revocations.EndedAt(ctx, actorID)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrRevocations, err)
	}
	return !at.IsZero() && !started.After(at), nil
}

// endedImpersonations returns where ended impersonation IDs are kept.
func (p *Plugin) endedImpersonations() EndedImpersonations {
	if e, ok := p.opts.Revocations.(EndedImpersonations); ok {
		return e
	}
	return p.localEnded
}

// rememberEnd records that impersonation id, with the given deadline, is
// over. It runs after the session was replaced, so a failure cannot undo
// the end; it is logged.
func (p *Plugin) rememberEnd(ctx context.Context, id string, deadline time.Time) {
	if err := p.endedImpersonations().EndImpersonation(ctx, id, deadline); err != nil {
		p.opts.Logger.Error("loginas: recording the end of an impersonation failed", "impersonation", id, "err", err)
	}
}

// wasEnded reports whether impersonation id has ended before.
func (p *Plugin) wasEnded(ctx context.Context, id string) (bool, error) {
	ended, err := p.endedImpersonations().ImpersonationEnded(ctx, id)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrRevocations, err)
	}
	return ended, nil
}

// NewMemoryRevocations returns Revocations, with EndedImpersonations, kept
// in this process's memory: enough for an app that runs as a single
// instance, and for tests.
func NewMemoryRevocations() Revocations {
	return newMemoryRevocations(time.Now)
}

func newMemoryRevocations(clock func() time.Time) *memoryRevocations {
	return &memoryRevocations{ended: map[string]time.Time{}, records: map[string]time.Time{}, sweepAt: minSweep, clock: clock}
}

type memoryRevocations struct {
	mu      sync.Mutex
	ended   map[string]time.Time // actor ID → EndAll moment
	records map[string]time.Time // impersonation ID → its deadline
	// sweepAt is the size of records at which entries past their deadline
	// are dropped; it doubles with what survives a sweep, so sweeping costs
	// a constant amount per entry.
	sweepAt int
	clock   func() time.Time
}

// minSweep is the smallest size of the ended-impersonation memory that is
// swept.
const minSweep = 1024

var _ EndedImpersonations = (*memoryRevocations)(nil)

func (m *memoryRevocations) EndImpersonation(_ context.Context, id string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.records) >= m.sweepAt {
		// Entries past their deadline guard nothing: the deadline check
		// refuses those records already.
		now := m.clock()
		for k, deadline := range m.records {
			if now.After(deadline) {
				delete(m.records, k)
			}
		}
		m.sweepAt = max(minSweep, 2*len(m.records))
	}
	m.records[id] = until
	return nil
}

func (m *memoryRevocations) ImpersonationEnded(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.records[id]
	return ok, nil
}

func (m *memoryRevocations) EndAll(_ context.Context, actorID string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.ended[actorID]) {
		m.ended[actorID] = at
	}
	return nil
}

func (m *memoryRevocations) EndedAt(_ context.Context, actorID string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended[actorID], nil
}
