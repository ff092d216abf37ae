package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
	"github.com/gin-loginas/loginas/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

var ctx = context.Background()

func TestMain(m *testing.M) {
	// The tests that stop the server would fill the output with the
	// client's complaints about failed dials.
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// newClient returns a client of srv that is closed when t ends.
func newClient(t testing.TB, srv *redistest.Server, tweak ...func(*redis.Options)) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: srv.Addr}
	for _, f := range tweak {
		f(opts)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// entry returns a live entry with fresh IDs that started at started and
// runs for an hour.
func entry(started time.Time) loginas.Entry {
	id := rand.Text()
	return loginas.Entry{
		ID: id, ActorID: "actor-" + id[:6], ActorName: "Actor", TargetID: "target-" + id[:6], TargetName: "Target",
		Reason: "ticket 7", Started: started, Deadline: started.Add(time.Hour),
	}
}

func mustStart(t testing.TB, s *Store, e loginas.Entry) {
	t.Helper()
	if err := s.Start(ctx, e); err != nil {
		t.Fatalf("Start(%s): %v", e.ID, err)
	}
}

func mustEntry(t testing.TB, s *Store, id string) loginas.Entry {
	t.Helper()
	e, err := s.Entry(ctx, id)
	if err != nil {
		t.Fatalf("Entry(%s): %v", id, err)
	}
	return e
}

// pexpiretime is the Unix millisecond at which key expires; -1 when it has
// no expiry, -2 when it does not exist.
func pexpiretime(t testing.TB, c *redis.Client, key string) int64 {
	t.Helper()
	v, err := c.Do(ctx, "PEXPIRETIME", key).Int64()
	if err != nil {
		t.Fatalf("PEXPIRETIME %s: %v", key, err)
	}
	return v
}

func exists(t testing.TB, c *redis.Client, key string) bool {
	t.Helper()
	n, err := c.Exists(ctx, key).Result()
	if err != nil {
		t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

func inSet(t testing.TB, c *redis.Client, set, id string) bool {
	t.Helper()
	err := c.ZScore(ctx, set, id).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("ZSCORE %s %s: %v", set, id, err)
	}
	return err == nil
}

// TestConformance runs the loginastest suites on a real server, with the
// default prefix and with a hash-tagged one as for Redis Cluster.
func TestConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv)
	for _, prefix := range []string{"", "{loginas}:"} {
		t.Run("Prefix="+prefix, func(t *testing.T) {
			loginastest.CheckStore(t, func(*testing.T) loginas.Store { return New(c, Options{Prefix: prefix}) })
			loginastest.CheckConsents(t, func(*testing.T) loginas.Consents { return New(c, Options{Prefix: prefix}) })
		})
	}
}

// TestRoundTrip shows that texts come back byte for byte and times come
// back in UTC, to the millisecond.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := New(newClient(t, srv), Options{})
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	started := time.Date(2031, 3, 4, 5, 6, 7, 891_234_567, paris)
	for _, text := range []string{
		"",
		"Zoë «Ünïcode» 日本語 👩‍💻",
		"first line\nsecond line\r\nthird\ttabbed",
		"nul\x00byte and \x1b[31m escape",
		"not UTF-8: \xff\xfe",
		strings.Repeat("long ", 4000),
		"a:b:c imp:x consent:y",
	} {
		e := entry(started)
		e.ID = "id " + text[:min(len(text), 20)] + rand.Text()
		e.ActorID, e.TargetID = "actor:"+text[:min(len(text), 10)], "target "+text[:min(len(text), 10)]
		e.ActorName, e.TargetName, e.Reason = text, text+"!", text+"?"
		mustStart(t, s, e)
		got := mustEntry(t, s, e.ID)
		if got.ID != e.ID || got.ActorID != e.ActorID || got.TargetID != e.TargetID ||
			got.ActorName != e.ActorName || got.TargetName != e.TargetName || got.Reason != e.Reason {
			t.Errorf("texts came back as %+q, want %+q", got, e)
		}
		for name, pair := range map[string][2]time.Time{"Started": {got.Started, e.Started}, "Deadline": {got.Deadline, e.Deadline}} {
			if pair[0].Location() != time.UTC || !pair[0].Equal(pair[1].Truncate(time.Millisecond)) {
				t.Errorf("%s = %s, want %s in UTC", name, pair[0], pair[1].Truncate(time.Millisecond).UTC())
			}
		}
		at := started.Add(time.Minute + 123_456)
		ended, err := s.End(ctx, loginas.Selector{ActorID: e.ActorID}, loginas.CauseEndedByAdmin, at)
		if err != nil || len(ended) != 1 {
			t.Fatalf("End by actor %q = %v, %v; want the entry", e.ActorID, ended, err)
		}
		for _, got := range []loginas.Entry{ended[0], mustEntry(t, s, e.ID)} {
			if got.Reason != e.Reason || got.Cause != loginas.CauseEndedByAdmin ||
				got.Ended.Location() != time.UTC || !got.Ended.Equal(at.Truncate(time.Millisecond)) {
				t.Errorf("ended entry = %+v, want the reason kept and ended at %s", got, at.Truncate(time.Millisecond).UTC())
			}
		}
	}
}

// TestKeys shows the key layout and the TTLs the README documents.
func TestKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv)
	const grace = 90 * time.Second
	s := New(c, Options{Prefix: "app1:", Grace: grace})
	now := time.Now().Truncate(time.Millisecond)

	long := entry(now)
	short := entry(now)
	short.ActorID, short.TargetID, short.Deadline = long.ActorID, long.TargetID, now.Add(10*time.Minute)
	mustStart(t, s, long)
	mustStart(t, s, short)

	for _, e := range []loginas.Entry{long, short} {
		key := "app1:imp:" + e.ID
		if got, want := pexpiretime(t, c, key), e.Deadline.Add(grace).UnixMilli(); got != want {
			t.Errorf("%s expires at %d, want deadline+grace %d", key, got, want)
		}
		fields, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"id": e.ID, "actor_id": e.ActorID, "actor_name": e.ActorName, "target_id": e.TargetID,
			"target_name": e.TargetName, "reason": e.Reason, "started": ms(e.Started), "deadline": ms(e.Deadline),
		}
		if !mapsEqual(fields, want) {
			t.Errorf("%s = %v, want %v", key, fields, want)
		}
	}
	for _, set := range []string{"app1:actor:" + long.ActorID, "app1:target:" + long.TargetID, "app1:live"} {
		for _, e := range []loginas.Entry{long, short} {
			score, err := c.ZScore(ctx, set, e.ID).Result()
			if err != nil || int64(score) != e.Deadline.UnixMilli() {
				t.Errorf("ZSCORE %s %s = %v, %v; want the deadline %d", set, e.ID, score, err, e.Deadline.UnixMilli())
			}
		}
		if got, want := pexpiretime(t, c, set), long.Deadline.Add(grace).UnixMilli(); got != want {
			t.Errorf("%s expires at %d, want the latest deadline+grace %d", set, got, want)
		}
	}

	// End takes the entry out of the live sets and keeps its TTL.
	at := now.Add(time.Minute)
	if ended, err := s.End(ctx, loginas.Selector{ID: short.ID}, loginas.CauseLogout, at); err != nil || len(ended) != 1 {
		t.Fatalf("End = %v, %v", ended, err)
	}
	key := "app1:imp:" + short.ID
	if got, want := pexpiretime(t, c, key), short.Deadline.Add(grace).UnixMilli(); got != want {
		t.Errorf("after End, %s expires at %d, want %d still", key, got, want)
	}
	if f, _ := c.HMGet(ctx, key, "ended", "cause").Result(); f[0] != ms(at) || f[1] != "logout" {
		t.Errorf("after End, %s has ended, cause = %v", key, f)
	}
	for _, set := range []string{"app1:actor:" + long.ActorID, "app1:target:" + long.TargetID, "app1:live"} {
		if inSet(t, c, set, short.ID) {
			t.Errorf("after End, %s still holds %s", set, short.ID)
		}
		if !inSet(t, c, set, long.ID) {
			t.Errorf("after End of another entry, %s lost %s", set, long.ID)
		}
	}

	// Consent: the grant's time, expiring then; the zero time deletes it.
	until := now.Add(7 * 24 * time.Hour).Add(123 * time.Millisecond)
	if err := s.SetConsent(ctx, "t1", until); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "app1:consent:t1").Result(); err != nil || v != ms(until) {
		t.Errorf("app1:consent:t1 = %q, %v; want %s", v, err, ms(until))
	}
	if got := pexpiretime(t, c, "app1:consent:t1"); got != until.UnixMilli() {
		t.Errorf("app1:consent:t1 expires at %d, want until %d", got, until.UnixMilli())
	}
	if err := s.SetConsent(ctx, "t1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if exists(t, c, "app1:consent:t1") {
		t.Errorf("SetConsent(zero) left app1:consent:t1")
	}
	if err := s.SetConsent(ctx, "t2", now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Consent(ctx, "t2"); err != nil || !got.IsZero() || exists(t, c, "app1:consent:t2") {
		t.Errorf("a grant until a time past = %s, %v; want none and no key", got, err)
	}

	// Nothing is written outside the prefix, and nothing lives forever.
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "app1:") {
			t.Errorf("key %q is outside the prefix", k)
		}
		if pexpiretime(t, c, k) < 0 {
			t.Errorf("key %q has no TTL", k)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestExpiry shows entries, their sets and consents disappearing by TTL,
// with a short deadline and Grace.
func TestExpiry(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv)
	const grace = 300 * time.Millisecond
	s := New(c, Options{Grace: grace})
	now := time.Now()
	e := entry(now)
	e.Deadline = now.Add(200 * time.Millisecond)
	mustStart(t, s, e)
	if err := s.SetConsent(ctx, e.TargetID, now.Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}

	// Past the deadline, within Grace: still there, so the first request
	// after the deadline can record the expiry, but no longer live.
	time.Sleep(time.Until(e.Deadline.Add(grace / 4)))
	got := mustEntry(t, s, e.ID)
	if got.Live(time.Now()) {
		t.Errorf("entry past its deadline is live: %+v", got)
	}
	if live, err := s.Live(ctx, "", time.Now(), 10); err != nil || len(live) != 0 {
		t.Errorf("Live past the deadline = %v, %v; want nothing", live, err)
	}
	if ended, err := s.End(ctx, loginas.Selector{ActorID: e.ActorID}, loginas.CauseEnded, time.Now()); err != nil || len(ended) != 0 {
		t.Errorf("End by actor past the deadline = %v, %v; want nothing", ended, err)
	}
	if until, err := s.Consent(ctx, e.TargetID); err != nil || !until.IsZero() {
		t.Errorf("Consent after its end = %s, %v; want none", until, err)
	}

	time.Sleep(time.Until(e.Deadline.Add(grace + 20*time.Millisecond)))
	if _, err := s.Entry(ctx, e.ID); !errors.Is(err, loginas.ErrNoEntry) {
		t.Errorf("Entry after deadline+grace: err = %v, want ErrNoEntry", err)
	}
	if ended, err := s.End(ctx, loginas.Selector{ID: e.ID}, loginas.CauseExpired, time.Now()); err != nil || len(ended) != 0 {
		t.Errorf("End by ID after deadline+grace = %v, %v; want nothing", ended, err)
	}
	if keys, err := c.Keys(ctx, "*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("after deadline+grace the server holds %v, %v; want no keys", keys, err)
	}
}

// TestStartTwice shows that a repeated Start (a client's retry) changes
// nothing, that no Start brings back an ended entry, and that an ID in use
// cannot be taken by another entry.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := New(newClient(t, srv), Options{})
	now := time.Now().Truncate(time.Millisecond)
	e := entry(now)
	mustStart(t, s, e)
	mustStart(t, s, e)
	if _, err := s.End(ctx, loginas.Selector{ID: e.ID}, loginas.CauseLogout, now); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, e)
	if got := mustEntry(t, s, e.ID); got.Cause != loginas.CauseLogout {
		t.Errorf("Start of an ended entry brought it back: %+v", got)
	}
	other := entry(now)
	other.ID = e.ID
	if err := s.Start(ctx, other); err == nil || !strings.HasPrefix(err.Error(), "redisstore: start: ") {
		t.Errorf("Start of another entry under the same ID: err = %v, want an error", err)
	}
	if got := mustEntry(t, s, e.ID); got.ActorID != e.ActorID {
		t.Errorf("the entry became %+v", got)
	}
	if err := s.Start(ctx, loginas.Entry{}); err == nil {
		t.Errorf("Start of an entry without ID succeeded")
	}
}

// TestExpiredAtStart shows that an entry whose deadline+grace has passed
// is not kept at all.
func TestExpiredAtStart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv)
	s := New(c, Options{})
	now := time.Now()
	e := entry(now.Add(-3 * time.Hour))
	e.Deadline = now.Add(-2 * time.Minute)
	mustStart(t, s, e)
	if _, err := s.Entry(ctx, e.ID); !errors.Is(err, loginas.ErrNoEntry) {
		t.Errorf("Entry: err = %v, want ErrNoEntry", err)
	}
	if keys, err := c.Keys(ctx, "*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("the server holds %v, %v; want nothing", keys, err)
	}
}

// TestEndRetried shows that an End repeated with the token of the first
// attempt, as when a client retries a call whose reply was lost, returns
// what the first attempt ended, and that another call gets nothing.
func TestEndRetried(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := New(newClient(t, srv), Options{})
	now := time.Now().Truncate(time.Millisecond)
	a, b := entry(now), entry(now.Add(time.Second))
	b.ActorID = a.ActorID
	c := entry(now)
	for _, e := range []loginas.Entry{a, b, c} {
		mustStart(t, s, e)
	}
	for _, tc := range []struct {
		sel  loginas.Selector
		want []string
	}{
		{loginas.Selector{ActorID: a.ActorID}, []string{a.ID, b.ID}},
		{loginas.Selector{ID: c.ID}, []string{c.ID}},
	} {
		token := rand.Text()
		var first []loginas.Entry
		for attempt := range 2 {
			ended, err := s.end(ctx, tc.sel, loginas.CauseEnded, now, token)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(ended); !sameIDs(got, tc.want) {
				t.Errorf("attempt %d of End(%+v) = %v, want %v", attempt+1, tc.sel, got, tc.want)
			}
			if attempt == 0 {
				first = ended
			} else if !slices.EqualFunc(sortedByID(first), sortedByID(ended), sameEntry) {
				t.Errorf("the retry returned %+v, the first attempt %+v", ended, first)
			}
		}
		if ended, err := s.End(ctx, tc.sel, loginas.CauseRevoked, now); err != nil || len(ended) != 0 {
			t.Errorf("another End(%+v) = %v, %v; want nothing", tc.sel, ended, err)
		}
	}
}

// TestBadSelector shows that End refuses a selector without exactly one
// field.
func TestBadSelector(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := New(newClient(t, srv), Options{})
	for _, sel := range []loginas.Selector{{}, {ID: "a", ActorID: "b"}, {ActorID: "a", TargetID: "b"}} {
		if _, err := s.End(ctx, sel, loginas.CauseEnded, time.Now()); err == nil {
			t.Errorf("End(%+v) succeeded", sel)
		}
	}
}

// TestPrefixes shows that stores with different prefixes on one server do
// not see each other's entries or consents.
func TestPrefixes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv)
	one, two := New(c, Options{Prefix: "one:"}), New(c, Options{Prefix: "two:"})
	now := time.Now()
	e := entry(now)
	mustStart(t, one, e)
	if err := one.SetConsent(ctx, e.TargetID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Entry(ctx, e.ID); !errors.Is(err, loginas.ErrNoEntry) {
		t.Errorf("the other prefix's Entry: err = %v, want ErrNoEntry", err)
	}
	if live, err := two.Live(ctx, "", now, 10); err != nil || len(live) != 0 {
		t.Errorf("the other prefix's Live = %v, %v", live, err)
	}
	if ended, err := two.End(ctx, loginas.Selector{ActorID: e.ActorID}, loginas.CauseEnded, now); err != nil || len(ended) != 0 {
		t.Errorf("the other prefix's End = %v, %v", ended, err)
	}
	if until, err := two.Consent(ctx, e.TargetID); err != nil || !until.IsZero() {
		t.Errorf("the other prefix's Consent = %s, %v", until, err)
	}
	if live, err := one.Live(ctx, "", now, 10); err != nil || len(live) != 1 {
		t.Errorf("Live = %v, %v; want the entry", live, err)
	}
}

func ids(entries []loginas.Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

func sameIDs(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func sortedByID(entries []loginas.Entry) []loginas.Entry {
	return slices.SortedFunc(slices.Values(entries), func(a, b loginas.Entry) int { return strings.Compare(a.ID, b.ID) })
}

func sameEntry(a, b loginas.Entry) bool {
	return a.ID == b.ID && a.ActorID == b.ActorID && a.ActorName == b.ActorName && a.TargetID == b.TargetID &&
		a.TargetName == b.TargetName && a.Reason == b.Reason && a.Cause == b.Cause &&
		a.Started.Equal(b.Started) && a.Deadline.Equal(b.Deadline) && a.Ended.Equal(b.Ended)
}
