package loginas

import (
	"context"
	"sync"
	"time"
)

// MaxEntryCache is the longest Options.EntryCache allowed: an end made on
// another instance takes effect on this one within EntryCache, and an
// ended impersonation must not stay usable for longer than a few seconds.
const MaxEntryCache = 10 * time.Second

// entryCache keeps, for Options.EntryCache, the live entries this instance
// read from the Store, so that an impersonated request does not ask the
// Store again within that time. Only live entries are kept. An end made
// through this instance replaces the entry with a tombstone at once, and a
// tombstone is never overwritten by a read that raced with the end, so
// this instance never serves an impersonation it ended. Ends made on other
// instances are seen when the cached entry expires.
type entryCache struct {
	ttl time.Duration
	mu  sync.Mutex
	// items maps an impersonation ID to its cached entry or tombstone.
	items map[string]cachedEntry
	// sweepAt is when the expired items are next dropped.
	sweepAt time.Time
}

type cachedEntry struct {
	entry   Entry
	expires time.Time
	ended   bool // a tombstone: this instance ended it
}

// newEntryCache returns a cache that keeps entries for ttl, or nil when ttl
// is zero: every lookup then goes to the Store.
func newEntryCache(ttl time.Duration) *entryCache {
	if ttl <= 0 {
		return nil
	}
	return &entryCache{ttl: ttl, items: map[string]cachedEntry{}}
}

// get returns the live entry cached under id, if it has not expired at now.
func (ec *entryCache) get(id string, now time.Time) (Entry, bool) {
	if ec == nil {
		return Entry{}, false
	}
	ec.mu.Lock()
	item, ok := ec.items[id]
	ec.mu.Unlock()
	if !ok || item.ended || !now.Before(item.expires) {
		return Entry{}, false
	}
	return item.entry, true
}

// put caches e, which the Store returned to a lookup that began at read,
// until read plus the TTL. It keeps nothing when e has ended, when this
// instance ended it (a tombstone), or when that time has passed already.
func (ec *entryCache) put(e Entry, read, now time.Time) {
	if ec == nil || !e.Ended.IsZero() {
		return
	}
	expires := read.Add(ec.ttl)
	if !now.Before(expires) {
		return
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if item, ok := ec.items[e.ID]; ok && item.ended {
		return
	}
	ec.items[e.ID] = cachedEntry{entry: e, expires: expires}
	ec.sweep(now)
}

// ended replaces with tombstones what an End through this instance picked:
// the entries it returned, and every cached entry sel matches, since an
// entry another instance ended first is not returned. A tombstone lasts
// one TTL: longer than any lookup that began before the end may still put
// its answer.
func (ec *entryCache) ended(sel Selector, entries []Entry, now time.Time) {
	if ec == nil {
		return
	}
	tombstone := cachedEntry{expires: now.Add(ec.ttl), ended: true}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if sel.ID != "" {
		ec.items[sel.ID] = tombstone // End by ID returns at most this one
		ec.sweep(now)
		return
	}
	for id, item := range ec.items {
		if !item.ended && sel.picks(item.entry) {
			ec.items[id] = tombstone
		}
	}
	for _, e := range entries {
		ec.items[e.ID] = tombstone
	}
	ec.sweep(now)
}

// sweep drops the expired items, at most once a TTL, so that the map holds
// only what the last two TTLs touched. ec.mu must be held.
func (ec *entryCache) sweep(now time.Time) {
	if now.Before(ec.sweepAt) {
		return
	}
	for id, item := range ec.items {
		if !now.Before(item.expires) {
			delete(ec.items, id)
		}
	}
	ec.sweepAt = now.Add(ec.ttl)
}

// entry looks the impersonation up: in the entry cache, else in the Store,
// caching a live answer. now is the time the request is checked at.
func (p *Plugin) entry(ctx context.Context, id string, now time.Time) (Entry, error) {
	if e, ok := p.entries.get(id, now); ok {
		return e, nil
	}
	e, err := p.opts.Store.Entry(ctx, id)
	if err == nil {
		p.entries.put(e, now, p.opts.Clock())
	}
	return e, err
}
