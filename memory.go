package loginas

import (
	"context"
	"slices"
	"sync"
	"time"
)

// NewMemoryStore returns a Store, with History and Consents, kept in this
// process's memory. It is the default Options.Store: enough for an app that
// runs as one instance, and for tests. Everything in it is gone when the
// process stops, so a restart ends every impersonation, which is the safe
// way round. Several instances need a shared store instead (the sqlstore
// and redisstore modules).
//
// It keeps an entry until a minute after its deadline, and the newest 100
// impersonations of each account for History and TakeNotices.
func NewMemoryStore() Store {
	return newMemoryStore(time.Now)
}

// memoryGrace is how long after its deadline the memory store keeps an
// entry, so that the first request after the deadline finds it and records
// the expiry.
const memoryGrace = time.Minute

// memoryHistory is how many impersonations of one account the memory store
// keeps for History and TakeNotices.
const memoryHistory = 100

// minSweep is the smallest number of entries at which the memory store drops
// those past their deadline.
const minSweep = 1024

type memoryEntry struct {
	Entry
	noticed bool
}

type memoryStore struct {
	mu sync.RWMutex
	// entries holds every impersonation until memoryGrace after its
	// deadline.
	entries map[string]*memoryEntry
	// history holds the newest memoryHistory impersonations of each target,
	// oldest first.
	history  map[string][]*memoryEntry
	consents map[string]time.Time
	// sweepAt is the size of entries at which those past their deadline are
	// dropped; it doubles with what survives a sweep, so sweeping costs a
	// constant amount per entry.
	sweepAt int
	clock   func() time.Time
}

var (
	_ Store    = (*memoryStore)(nil)
	_ History  = (*memoryStore)(nil)
	_ Consents = (*memoryStore)(nil)
)

func newMemoryStore(clock func() time.Time) *memoryStore {
	return &memoryStore{
		entries:  map[string]*memoryEntry{},
		history:  map[string][]*memoryEntry{},
		consents: map[string]time.Time{},
		sweepAt:  minSweep,
		clock:    clock,
	}
}

func (m *memoryStore) Start(_ context.Context, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= m.sweepAt {
		now := m.clock()
		for id, old := range m.entries {
			if now.After(old.Deadline.Add(memoryGrace)) {
				delete(m.entries, id)
			}
		}
		m.sweepAt = max(minSweep, 2*len(m.entries))
	}
	me := &memoryEntry{Entry: e}
	m.entries[e.ID] = me
	m.remember(me)
	return nil
}

// remember adds e to the history of its target, dropping the oldest beyond
// memoryHistory.
func (m *memoryStore) remember(e *memoryEntry) {
	h := append(m.history[e.TargetID], e)
	if len(h) > memoryHistory {
		h = slices.Delete(h, 0, len(h)-memoryHistory)
	}
	m.history[e.TargetID] = h
}

func (m *memoryStore) Entry(_ context.Context, id string) (Entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.entries[id]
	if !ok {
		return Entry{}, ErrNoEntry
	}
	return e.Entry, nil
}

func (m *memoryStore) End(_ context.Context, sel Selector, cause Cause, at time.Time) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ended []Entry
	end := func(e *memoryEntry) {
		if e.Ended.IsZero() {
			e.Ended, e.Cause = at, cause
			ended = append(ended, e.Entry)
		}
	}
	if sel.ID != "" {
		if e, ok := m.entries[sel.ID]; ok {
			end(e)
		}
		return ended, nil
	}
	for _, e := range m.entries {
		if !e.Deadline.After(at) {
			continue
		}
		if sel.picks(e.Entry) {
			end(e)
		}
	}
	return ended, nil
}

func (m *memoryStore) Live(_ context.Context, targetID string, now time.Time, limit int) ([]Entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var live []Entry
	if targetID != "" {
		for _, e := range m.history[targetID] {
			if e.Live(now) {
				live = append(live, e.Entry)
			}
		}
	} else {
		for _, e := range m.entries {
			if e.Live(now) {
				live = append(live, e.Entry)
			}
		}
	}
	newestFirst(live)
	return live[:min(len(live), max(limit, 0))], nil
}

// Record keeps e in the history of its target, for a memory store that is
// the History of another Store.
func (m *memoryStore) Record(_ context.Context, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, old := range m.history[e.TargetID] {
		if old.ID == e.ID {
			old.Entry = e
			return nil
		}
	}
	m.remember(&memoryEntry{Entry: e})
	return nil
}

func (m *memoryStore) History(_ context.Context, targetID string, before time.Time, limit int) ([]Entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Entry
	for _, e := range m.history[targetID] {
		if before.IsZero() || e.Started.Before(before) {
			out = append(out, e.Entry)
		}
	}
	newestFirst(out)
	return out[:min(len(out), max(limit, 0))], nil
}

func (m *memoryStore) TakeNotices(_ context.Context, targetID string) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.history[targetID] {
		if !e.Ended.IsZero() && !e.noticed && e.Cause != CauseFailed {
			e.noticed = true
			out = append(out, e.Entry)
		}
	}
	newestFirst(out)
	return out, nil
}

func (m *memoryStore) SetConsent(_ context.Context, targetID string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if until.IsZero() {
		delete(m.consents, targetID)
	} else {
		m.consents[targetID] = until
	}
	return nil
}

func (m *memoryStore) Consent(_ context.Context, targetID string) (time.Time, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.consents[targetID], nil
}

// newestFirst sorts entries by start, newest first.
func newestFirst(entries []Entry) {
	slices.SortFunc(entries, func(a, b Entry) int { return b.Started.Compare(a.Started) })
}
