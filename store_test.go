package loginas_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	loginastest.CheckStore(t, func(*testing.T) loginas.Store { return loginas.NewMemoryStore() })
	loginastest.CheckHistory(t, func(*testing.T) loginas.History { return loginas.NewMemoryStore().(loginas.History) })
	loginastest.CheckConsents(t, func(*testing.T) loginas.Consents { return loginas.NewMemoryStore().(loginas.Consents) })
}

var errStoreDown = errors.New("test: the Store is down")

// faultyStore is a Store whose calls can be made to fail, one kind at a
// time.
type faultyStore struct {
	loginas.Store
	failStart, failEntry, failEnd atomic.Bool
}

func (f *faultyStore) Start(ctx context.Context, e loginas.Entry) error {
	if f.failStart.Load() {
		return errStoreDown
	}
	return f.Store.Start(ctx, e)
}

func (f *faultyStore) Entry(ctx context.Context, id string) (loginas.Entry, error) {
	if f.failEntry.Load() {
		return loginas.Entry{}, errStoreDown
	}
	return f.Store.Entry(ctx, id)
}

func (f *faultyStore) End(ctx context.Context, sel loginas.Selector, cause loginas.Cause, at time.Time) ([]loginas.Entry, error) {
	if f.failEnd.Load() {
		return nil, errStoreDown
	}
	return f.Store.End(ctx, sel, cause, at)
}

// A copy of an impersonated cookie, taken before the return, is refused by
// a restarted app: with the default in-memory Store the restart forgot the
// impersonation, so it counts as ended; with a shared Store, the end is
// there. Its logout never hands out the actor's session.
func TestRestartDoesNotBringAnEndedImpersonationBack(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		t.Run("in-memory Store", func(t *testing.T) {
			before := newApp(t, st)
			c := before.signedIn("admin")
			c.mustSwitch("alice")
			copied := c.cookies()
			require.Equal(t, http.StatusSeeOther, c.logout(nil).status)

			restarted := newApp(t, st) // same secret, fresh process
			replay := restarted.clientWith(copied)
			if st.serverSide {
				// The session lived in the old process's memory store.
				assert.Nil(t, replay.state().User)
				return
			}
			s := replay.state()
			assert.False(t, s.Impersonated, "a restart must not revive the impersonation")
			assert.Nil(t, s.User, "the replayed session is signed out")
			replay = restarted.clientWith(copied)
			r := replay.post(restarted.plugin.LogoutURL(), nil)
			assert.NotEqual(t, http.StatusOK, r.status)
			assert.NotEqual(t, "admin", replay.state().user(), "the logout of a replayed copy must not hand out the actor's session")
			stale := restarted.audit.only(t, loginas.ActionEnd, loginas.CauseStale)
			assert.Equal(t, "admin", stale.ActorID)
		})
		t.Run("shared Store", func(t *testing.T) {
			store := loginas.NewMemoryStore()
			shared := withOptions(func(o *loginas.Options) { o.Store = store })
			before := newApp(t, cookieStore, shared)
			ended, live := before.client(), before.client()
			ended.signIn("admin")
			ended.mustSwitch("alice")
			endedCopy := ended.cookies()
			require.Equal(t, http.StatusSeeOther, ended.logout(nil).status)
			live.signIn("root")
			live.mustSwitch("bob")

			restarted := newApp(t, cookieStore, shared)
			assert.False(t, restarted.clientWith(endedCopy).state().Impersonated, "the end is in the shared Store")
			s := restarted.clientWith(live.cookies()).state()
			assert.True(t, s.Impersonated, "a live impersonation survives the restart")
			assert.Equal(t, "bob", s.user())
		})
	})
}

// The return records the end in the Store before it replaces the session:
// when the Store fails, the answer is 503 and nothing changed; when it
// works, a copy of the old session is refused even if the session store
// could not delete it (see TestFaultSessionStore).
func TestReturnRecordsTheEndFirst(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		store := &faultyStore{Store: loginas.NewMemoryStore()}
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.Store = store }))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		copied := c.cookies()

		store.failEnd.Store(true)
		r := c.logout(nil)
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
		s := c.state()
		assert.True(t, s.Impersonated, "a return whose end could not be recorded changes nothing")
		assert.Equal(t, "alice", s.user())
		assert.Empty(t, a.audit.matching(loginas.ActionEnd, ""))

		store.failEnd.Store(false)
		require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
		assert.Equal(t, "admin", c.state().user())
		assert.False(t, a.clientWith(copied).state().Impersonated, "the copy taken before the return is refused")
	})
}

// A Store that fails on an impersonated request answers 503 and leaves the
// session as it was: never signed out by mistake, never let through
// unchecked.
func TestStoreFailureOnAnImpersonatedRequest(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		store := &faultyStore{Store: loginas.NewMemoryStore()}
		a := newApp(t, st, withOptions(func(o *loginas.Options) { o.Store = store }))
		c := a.signedIn("admin")
		c.mustSwitch("alice")
		store.failEntry.Store(true)
		assert.Equal(t, http.StatusServiceUnavailable, c.get("/test/state").status)
		store.failEntry.Store(false)
		assert.True(t, c.state().Impersonated)

		store.failStart.Store(true)
		other := a.signedIn("root")
		r := other.switchTo("bob", nil)
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Equal(t, "root", other.state().user())
		assert.Equal(t, []string{"start/", "end/failed"}, a.audit.summary()[1:])
	})
}

// EndAll on one instance ends an impersonation that another instance
// started, whatever their clocks say: the instance that started it runs two
// minutes fast.
func TestEndAllIgnoresTheInstancesClocks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		store := loginas.NewMemoryStore()
		shared := withOptions(func(o *loginas.Options) { o.Store = store })
		fast := newApp(t, st, shared)
		fast.clock.advance(2 * time.Minute)
		slow := newApp(t, st, shared)

		c := fast.signedIn("admin")
		c.mustSwitch("alice")
		require.NoError(t, slow.plugin.EndAll(t.Context(), "admin"))
		s := c.state()
		assert.False(t, s.Impersonated, "EndAll on the slow instance ends what the fast one started")
		assert.Nil(t, s.User)
		assert.Contains(t, c.flashes(), msgEnded)
	})
}

func TestEndAllReachesEveryInstance(t *testing.T) {
	// Two instances share one user table and one Store, as two servers
	// behind a load balancer share a database.
	users := newUserStore()
	store := loginas.NewMemoryStore()
	shared := withOptions(func(o *loginas.Options) { o.Store = store })
	a := newApp(t, memStore, withUsers(users), shared)
	b := newApp(t, cookieStore, withUsers(users), shared)

	onA, onB, otherActor := a.client(), b.client(), b.client()
	onA.signIn("admin")
	onA.mustSwitch("alice")
	onB.signIn("admin")
	onB.mustSwitch("bob")
	otherActor.signIn("root")
	otherActor.mustSwitch("bob")

	a.clock.advance(time.Second)
	b.clock.advance(time.Second)
	require.NoError(t, a.plugin.EndAll(t.Context(), "admin"))

	for name, c := range map[string]*client{"instance A": onA, "instance B": onB} {
		st := c.state()
		assert.Emptyf(t, st.user(), "%s: signed out", name)
		assert.Falsef(t, st.Impersonated, "%s", name)
		assert.Containsf(t, c.flashes(), "Your session as "+map[string]string{"instance A": "Alice", "instance B": "Bob"}[name]+" was ended by an administrator. Please sign in again.", "%s", name)
	}
	// EndAll records both ends where it is called; the instance that signs
	// a session out later adds nothing.
	assert.Len(t, a.audit.matching(loginas.ActionEnd, loginas.CauseEnded), 2)
	assert.Empty(t, b.audit.matching(loginas.ActionEnd, ""))
	assert.Equal(t, "bob", otherActor.state().user(), "another actor's impersonation goes on")

	// New impersonations after EndAll work again.
	a.clock.advance(time.Second)
	onA.signIn("admin")
	onA.mustSwitch("alice")
	assert.True(t, onA.state().Impersonated)
}

// uncomparableStore is a Store and History of a type that == cannot
// compare: a struct holding a map.
type uncomparableStore struct {
	loginas.Store
	storeHistory
	tags map[string]string
}

// storeHistory names the embedded History, whose own name would hide its
// History method.
type storeHistory interface{ loginas.History }

// A Store whose type cannot be compared, given as Store and History too,
// works: the plugin never compares it with ==, which would panic.
func TestStoreOfAnUncomparableType(t *testing.T) {
	t.Parallel()
	mem := loginas.NewMemoryStore()
	store := uncomparableStore{Store: mem, storeHistory: mem.(loginas.History), tags: map[string]string{}}
	a := newApp(t, cookieStore, withOptions(func(o *loginas.Options) { o.Store, o.History = store, store }))
	c := a.signedIn("admin")
	c.mustSwitch("alice")
	require.Equal(t, http.StatusSeeOther, c.logout(nil).status)
	assert.Equal(t, "admin", c.state().user())
	assert.Equal(t, []string{"start/", "end/logout"}, a.audit.summary())
}
