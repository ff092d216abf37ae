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

// NewMemoryRevocations returns Revocations kept in this process's memory:
// enough for an app that runs as a single instance, and for tests.
func NewMemoryRevocations() Revocations {
	return &memoryRevocations{ended: map[string]time.Time{}}
}

type memoryRevocations struct {
	mu    sync.Mutex
	ended map[string]time.Time
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
