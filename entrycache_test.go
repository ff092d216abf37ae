package loginas_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

// countingStore counts the Store's Entry lookups. While hold is set, the
// next lookup reads the entry, reports on read, and returns what it read
// only once release is closed: a lookup that races with an end.
type countingStore struct {
	loginas.Store
	lookups atomic.Int64

	mu      sync.Mutex
	hold    bool
	read    chan struct{}
	release chan struct{}
}

func (s *countingStore) Entry(ctx context.Context, id string) (loginas.Entry, error) {
	s.lookups.Add(1)
	e, err := s.Store.Entry(ctx, id)
	s.mu.Lock()
	held := s.hold
	s.hold = false
	s.mu.Unlock()
	if held {
		close(s.read)
		<-s.release
	}
	return e, err
}

// holdNextLookup makes the next Entry wait, after reading, until the
// returned release is called; read is closed once it has read.
func (s *countingStore) holdNextLookup() (read <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.read, s.release = true, make(chan struct{}), make(chan struct{})
	return s.read, func() { close(s.release) }
}

// withEntryCache shares store between apps and sets Options.EntryCache.
func withEntryCache(store loginas.Store, ttl time.Duration) appOption {
	return withOptions(func(o *loginas.Options) { o.Store, o.EntryCache = store, ttl })
}

// With EntryCache, an impersonated request asks the Store only when the
// cached entry is older than EntryCache; without it, on every request.
func TestEntryCacheSavesLookups(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{0, 2 * time.Second} {
		t.Run("EntryCache="+ttl.String(), func(t *testing.T) {
			t.Parallel()
			store := &countingStore{Store: loginas.NewMemoryStore()}
			a := newApp(t, cookieStore, withEntryCache(store, ttl))
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			store.lookups.Store(0)
			for range 5 {
				a.clock.advance(300 * time.Millisecond)
				assert.True(t, c.state().Impersonated)
			}
			a.clock.advance(time.Second) // 2.5 s after the switch
			assert.True(t, c.state().Impersonated)
			if ttl == 0 {
				assert.EqualValues(t, 6, store.lookups.Load(), "one lookup a request")
			} else {
				// The switch cached its own entry; it expired after 2 s.
				assert.EqualValues(t, 1, store.lookups.Load(), "one lookup once the switch's entry expired")
			}
		})
	}
}

// An end made through the instance that caches takes effect on it at
// once: the return, EndAll, End, a person's end of access and an end that
// another instance made first and this one repeats.
func TestEntryCacheEndsHereAtOnce(t *testing.T) {
	t.Parallel()
	ends := map[string]func(t *testing.T, a *testApp, c *client){
		"return": func(t *testing.T, a *testApp, c *client) {
			require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		},
		"EndAll": func(t *testing.T, a *testApp, c *client) {
			require.NoError(t, a.plugin.EndAll(t.Context(), "admin"))
		},
		"End": func(t *testing.T, a *testApp, c *client) {
			require.NoError(t, a.plugin.End(t.Context(), c.state().Current.ID))
		},
		"the person's end of access": func(t *testing.T, a *testApp, c *client) {
			id := c.state().Current.ID
			alice := a.signedIn("alice")
			r := alice.post("/admin/loginas/access/end", alice.withToken(url.Values{"impersonation": {id}}))
			require.Equal(t, http.StatusSeeOther, r.status, r.body)
		},
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, cookieStore, withEntryCache(loginas.NewMemoryStore(), loginas.MaxEntryCache))
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			copied := c.cookies()
			require.True(t, a.clientWith(copied).state().Impersonated, "the copy works while the impersonation is live")
			end(t, a, c)
			s := a.clientWith(copied).state()
			assert.False(t, s.Impersonated, "a copy of the cookie is refused at once")
			assert.Nil(t, s.User)
		})
	}

	t.Run("a withdrawn consent", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, cookieStore, withEntryCache(loginas.NewMemoryStore(), loginas.MaxEntryCache),
			withOptions(func(o *loginas.Options) { o.RequireConsent = true }))
		alice := a.signedIn("alice")
		r := alice.post("/admin/loginas/access/consent", alice.withToken(url.Values{"duration": {"1h0m0s"}}), jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		copied := c.cookies()
		require.True(t, a.clientWith(copied).state().Impersonated)
		r = alice.post("/admin/loginas/access/consent", alice.withToken(url.Values{"withdraw": {"1"}}), jsonAccept)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.False(t, a.clientWith(copied).state().Impersonated, "a copy of the cookie is refused at once")
	})

	t.Run("the time limit, while the entry is cached", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, cookieStore, withEntryCache(loginas.NewMemoryStore(), loginas.MaxEntryCache),
			withOptions(func(o *loginas.Options) { o.MaxDuration = 5 * time.Second }))
		c := a.signedIn("admin")
		c.mustSwitch("alice") // cached for 10 s, limited to 5 s
		a.clock.advance(4 * time.Second)
		require.True(t, c.state().Impersonated)
		a.clock.advance(time.Second)
		assert.False(t, c.state().Impersonated, "the deadline is checked on every request")
		a.audit.only(t, loginas.ActionEnd, loginas.CauseExpired)
	})

	for name, endOnA := range map[string]func(t *testing.T, a *testApp, c *client){
		"return": ends["return"],
		"EndAll": ends["EndAll"],
	} {
		t.Run("ended on another instance first, then "+name+" here", func(t *testing.T) {
			t.Parallel()
			store, users := loginas.NewMemoryStore(), newUserStore()
			a := newApp(t, cookieStore, withUsers(users), withEntryCache(store, loginas.MaxEntryCache))
			b := newApp(t, cookieStore, withUsers(users), withEntryCache(store, loginas.MaxEntryCache))
			c := a.signedIn("admin")
			c.mustSwitch("alice")
			copied := c.cookies()
			require.Equal(t, http.StatusSeeOther, b.clientWith(copied).logout(nil).status, "the return on B")
			require.True(t, a.clientWith(copied).state().Impersonated, "A has the entry cached")
			endOnA(t, a, c) // the Store has nothing left to end
			assert.False(t, a.clientWith(copied).state().Impersonated, "A dropped its cached entry")
		})
	}
}

// An end made on another instance takes effect on the caching one when its
// cached entry expires, EntryCache after it was read, and not later.
func TestEntryCacheSeesOtherInstancesEndsWithinItsTime(t *testing.T) {
	t.Parallel()
	store, users := loginas.NewMemoryStore(), newUserStore()
	const ttl = 4 * time.Second
	a := newApp(t, cookieStore, withUsers(users), withEntryCache(store, ttl))
	b := newApp(t, cookieStore, withUsers(users), withEntryCache(store, ttl))
	c := a.signedIn("admin")
	c.mustSwitch("alice") // A caches the entry until 4 s from now
	a.clock.advance(time.Second)
	b.clock.advance(time.Second)
	require.NoError(t, b.plugin.EndAll(t.Context(), "admin"))

	a.clock.advance(2 * time.Second) // 3 s after the switch
	assert.True(t, a.clientWith(c.cookies()).state().Impersonated, "within EntryCache, A still trusts what it read")
	a.clock.advance(time.Second) // 4 s
	s := c.state()
	assert.False(t, s.Impersonated, "EntryCache after the read, A asks the Store again")
	assert.Nil(t, s.User)
	assert.Contains(t, c.flashes(), "Your session as Alice was ended by an administrator. Please sign in again.")
}

// A lookup that read the entry before an end on the same instance, and
// answers after it, does not put its live answer back into the cache: the
// request in flight is served, and the next one is refused.
func TestEntryCacheLookupRacingAnEnd(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: loginas.NewMemoryStore()}
	a := newApp(t, cookieStore, withEntryCache(store, loginas.MaxEntryCache))
	c := a.signedIn("admin")
	c.mustSwitch("alice")
	copied := c.cookies()
	a.clock.advance(loginas.MaxEntryCache) // the switch's entry has expired

	read, release := store.holdNextLookup()
	inFlight := make(chan state)
	go func() { inFlight <- a.clientWith(copied).state() }()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the Store was not asked: an expired cached entry was used")
	}
	require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
	release()
	assert.True(t, (<-inFlight).Impersonated, "the request in flight read the entry before the end")
	assert.False(t, a.clientWith(copied).state().Impersonated, "its answer was not cached")
}

// A failed lookup is not cached: the request answers 503 and the next one,
// once the Store is back, asks it again.
func TestEntryCacheKeepsNoFailure(t *testing.T) {
	t.Parallel()
	store := &faultyStore{Store: loginas.NewMemoryStore()}
	a := newApp(t, cookieStore, withEntryCache(store, time.Second))
	c := a.signedIn("admin")
	c.mustSwitch("alice")
	a.clock.advance(time.Second) // the switch's entry has expired
	store.failEntry.Store(true)
	_, status := c.tryPage()
	assert.Equal(t, http.StatusServiceUnavailable, status)
	store.failEntry.Store(false)
	assert.True(t, c.state().Impersonated, "the Store is asked again and the impersonation goes on")
}

// EntryCache is checked at start-up.
func TestEntryCacheIsValidated(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{-time.Second, loginas.MaxEntryCache + time.Millisecond} {
		_, err := loginas.New(loginas.Options{FindUser: newUserStore().find, SessionKey: userKey, Secret: testSecret, EntryCache: ttl})
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), "Options.EntryCache must be between 0 and 10s"), err.Error())
	}
}
