package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
	"github.com/gin-loginas/loginas/sqlstore/pgtest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	runBackend(t, sqliteBackend())
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	runBackend(t, postgresBackend(pgtest.Start(t)))
}

// runBackend runs every test that does not stop the server on b.
func runBackend(t *testing.T, b backend) {
	t.Run("Conformance", func(t *testing.T) { t.Parallel(); testConformance(t, b) })
	t.Run("Migrate", func(t *testing.T) { t.Parallel(); testMigrate(t, b) })
	t.Run("Schema", func(t *testing.T) { t.Parallel(); testSchema(t, b) })
	t.Run("Times", func(t *testing.T) { t.Parallel(); testTimes(t, b) })
	t.Run("Selector", func(t *testing.T) { t.Parallel(); testSelector(t, b) })
	t.Run("RecordAlone", func(t *testing.T) { t.Parallel(); testRecordAlone(t, b) })
	t.Run("Retention", func(t *testing.T) { t.Parallel(); testRetention(t, b) })
	t.Run("TwoInstances", func(t *testing.T) { t.Parallel(); testTwoInstances(t, b) })
	t.Run("Events", func(t *testing.T) { t.Parallel(); testEvents(t, b) })
	t.Run("Plans", func(t *testing.T) { t.Parallel(); testPlans(t, b) })
}

// testConformance runs the plugin's conformance suites, each subtest on the
// same database, each with a Store of its own.
func testConformance(t *testing.T, b backend) {
	dsn := b.fresh(t)
	db := b.store(t, dsn, Options{}).db
	open := func(t *testing.T) *Store {
		s := New(db, b.dialect)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Store", func(t *testing.T) {
		loginastest.CheckStore(t, func(t *testing.T) loginas.Store { return open(t) })
	})
	t.Run("History", func(t *testing.T) {
		loginastest.CheckHistory(t, func(t *testing.T) loginas.History { return open(t) })
	})
	t.Run("Consents", func(t *testing.T) {
		loginastest.CheckConsents(t, func(t *testing.T) loginas.Consents { return open(t) })
	})
}

// testMigrate runs Migrate on several pools at once, as instances starting
// together do, and again on a database that has the tables.
func testMigrate(t *testing.T, b backend) {
	dsn := b.fresh(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		s := New(b.open(t, dsn), b.dialect)
		wg.Go(func() { errs[i] = s.Migrate(timeout(t, 30*time.Second)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	s := b.store(t, dsn, Options{})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	e := newEntry(time.Now())
	if err := s.Start(context.Background(), e); err != nil {
		t.Fatalf("Start after Migrate: %v", err)
	}
}

// testSchema applies Schema as an app's own migration would, twice, and
// checks the store works on it.
func testSchema(t *testing.T, b backend) {
	db := b.open(t, b.fresh(t))
	for range 2 {
		if _, err := db.Exec(Schema(b.dialect)); err != nil {
			t.Fatalf("exec Schema: %v", err)
		}
	}
	s := New(db, b.dialect)
	defer s.Close()
	ctx := context.Background()
	e := newEntry(time.Now())
	if err := s.Start(ctx, e); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s.Audit(ctx, loginas.Event{Action: loginas.ActionStart, Time: time.Now()}); err != nil {
		t.Fatalf("Audit: %v", err)
	}
	for _, name := range []string{"loginas_impersonations_notices", "loginas_events_target", "loginas_consents"} {
		if !strings.Contains(Schema(b.dialect), name) {
			t.Errorf("Schema lacks %s", name)
		}
	}
}

// testTimes checks that times come back in UTC, to the microsecond.
func testTimes(t *testing.T, b backend) {
	s := b.newStore(t)
	ctx := context.Background()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	started := time.Date(2031, 3, 4, 5, 6, 7, 123456789, zone)
	e := newEntry(started)
	if err := s.Start(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Entry(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := started.Truncate(time.Microsecond).UTC()
	if got.Started != want || got.Started.Location() != time.UTC {
		t.Errorf("Started = %v (%v), want %v in UTC", got.Started, got.Started.Location(), want)
	}
	if !got.Ended.IsZero() || got.Cause != "" {
		t.Errorf("a live entry has Ended %v, Cause %q", got.Ended, got.Cause)
	}
	if err := s.SetConsent(ctx, "u1", started); err != nil {
		t.Fatal(err)
	}
	if until, err := s.Consent(ctx, "u1"); err != nil || until != want {
		t.Errorf("Consent = %v, %v; want %v", until, err, want)
	}
}

// testSelector checks that End refuses a selector without exactly one
// field, and ends nothing then.
func testSelector(t *testing.T, b backend) {
	s := b.newStore(t)
	ctx := context.Background()
	e := newEntry(time.Now())
	if err := s.Start(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []loginas.Selector{{}, {ID: e.ID, ActorID: e.ActorID}, {ActorID: e.ActorID, TargetID: e.TargetID}} {
		if ended, err := s.End(ctx, sel, loginas.CauseLogout, time.Now()); err == nil {
			t.Errorf("End(%+v) = %v, want an error", sel, ended)
		}
	}
	if got, err := s.Entry(ctx, e.ID); err != nil || !got.Ended.IsZero() {
		t.Errorf("after refused Ends the entry is %+v, %v; want it live", got, err)
	}
}

// testRecordAlone uses the Store as the History of another Store: only
// Record writes, as an upsert by ID.
func testRecordAlone(t *testing.T, b backend) {
	s := b.newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond).UTC()
	e := newEntry(now)
	mustRecord(t, s, e)
	mustRecord(t, s, e) // a repeated Record changes nothing
	if got := history(t, s, e.TargetID); len(got) != 1 || got[0] != e {
		t.Fatalf("History after Record = %+v, want %+v", got, e)
	}
	ended := e
	ended.Ended, ended.Cause = now.Add(time.Minute), loginas.CauseRevoked
	mustRecord(t, s, ended)
	mustRecord(t, s, e) // late, out of order: must not bring it back
	if got, err := s.Entry(ctx, e.ID); err != nil || got != ended {
		t.Fatalf("Entry after a late Record of the live entry = %+v, %v; want %+v", got, err, ended)
	}
	if got, err := s.TakeNotices(ctx, e.TargetID); err != nil || len(got) != 1 || got[0] != ended {
		t.Fatalf("TakeNotices = %+v, %v; want %+v", got, err, ended)
	}
	mustRecord(t, s, ended) // recorded again after the notice: not noticed twice
	if got, err := s.TakeNotices(ctx, e.TargetID); err != nil || len(got) != 0 {
		t.Fatalf("TakeNotices after a repeated Record = %+v, %v; want none", got, err)
	}
	// An entry that Start wrote takes a Record too.
	f := newEntry(now)
	if err := s.Start(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Ended, f.Cause = now.Add(time.Second), loginas.CauseLogout
	mustRecord(t, s, f)
	if got, err := s.Entry(ctx, f.ID); err != nil || got != f {
		t.Fatalf("Entry after Record = %+v, %v; want %+v", got, err, f)
	}
}

// testRetention checks that Start deletes a batch of impersonations past
// their deadline by more than Retention, and nothing else.
func testRetention(t *testing.T, b backend) {
	s := b.store(t, b.fresh(t), Options{Retention: 24 * time.Hour})
	ctx := context.Background()
	now := time.Now()
	kept := newEntry(now.Add(-20 * time.Hour)) // its deadline is 19 hours ago
	if err := s.Start(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := s.End(ctx, loginas.Selector{ID: kept.ID}, loginas.CauseLogout, now.Add(-19*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Each Start prunes relative to its own start: these, three days old,
	// delete nothing.
	var old []loginas.Entry
	for i := range pruneBatch + 4 {
		e := newEntry(now.Add(-72*time.Hour + time.Duration(i)*time.Minute))
		old = append(old, e)
		if err := s.Start(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	remaining := func() int {
		n := 0
		for _, e := range old {
			if _, err := s.Entry(ctx, e.ID); err == nil {
				n++
			} else if !errors.Is(err, loginas.ErrNoEntry) {
				t.Fatal(err)
			}
		}
		return n
	}
	if n := remaining(); n != len(old) {
		t.Fatalf("before a recent Start, %d of %d old entries remain, want all", n, len(old))
	}
	live := newEntry(now)
	if err := s.Start(ctx, live); err != nil {
		t.Fatal(err)
	}
	if n := remaining(); n != len(old)-pruneBatch {
		t.Fatalf("after one Start, %d old entries remain, want %d", n, len(old)-pruneBatch)
	}
	if err := s.Start(ctx, newEntry(now)); err != nil {
		t.Fatal(err)
	}
	if n := remaining(); n != 0 {
		t.Fatalf("after two Starts, %d old entries remain, want none", n)
	}
	for _, e := range []loginas.Entry{kept, live} {
		if _, err := s.Entry(ctx, e.ID); err != nil {
			t.Errorf("Entry(%s) within the retention: %v", e.ID, err)
		}
	}
}

// testTwoInstances races End and TakeNotices on two Stores with pools of
// their own over one database, as two instances of the app: every entry is
// ended once and every notice handed out once, across both.
func testTwoInstances(t *testing.T, b backend) {
	dsn := b.fresh(t)
	stores := []*Store{b.store(t, dsn, Options{}), b.store(t, dsn, Options{})}
	ctx := context.Background()
	now := time.Now()
	const targets, perTarget = 4, 8
	var entries []loginas.Entry
	for i := range targets * perTarget {
		e := newEntry(now)
		e.TargetID = "target-" + string(rune('a'+i%targets))
		e.ActorID = "actor-" + string(rune('a'+i%3))
		entries = append(entries, e)
		if err := stores[i%2].Start(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	ended := map[string]int{}
	noticed := map[string]int{}
	var wg sync.WaitGroup
	var failures []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, err)
	}
	for _, s := range stores {
		wg.Go(func() { // end every entry, by ID and by actor, racing the other store
			for _, e := range entries {
				sel := loginas.Selector{ID: e.ID}
				if e.ID[0]%2 == 0 {
					sel = loginas.Selector{ActorID: e.ActorID}
				}
				got, err := s.End(ctx, sel, loginas.CauseEndedByAdmin, now.Add(time.Second))
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				for _, g := range got {
					ended[g.ID]++
				}
				mu.Unlock()
			}
		})
		for target := range targets {
			wg.Go(func() { // take the notices of one target until they are all out
				id := "target-" + string(rune('a'+target))
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					got, err := s.TakeNotices(ctx, id)
					if err != nil {
						fail(err)
						return
					}
					mu.Lock()
					for _, g := range got {
						noticed[g.ID]++
					}
					n := 0
					for _, e := range entries {
						if e.TargetID == id && noticed[e.ID] > 0 {
							n++
						}
					}
					mu.Unlock()
					if n == perTarget {
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatal(errors.Join(failures...))
	}
	for _, e := range entries {
		if ended[e.ID] != 1 || noticed[e.ID] != 1 {
			t.Errorf("entry %s was ended %d times and noticed %d times, want once each", e.ID, ended[e.ID], noticed[e.ID])
		}
	}
}

func newEntry(started time.Time) loginas.Entry {
	id := randomID()
	started = started.Truncate(time.Microsecond).UTC()
	return loginas.Entry{
		ID: id, ActorID: "actor-" + id[:8], ActorName: "Actor " + id[:4],
		TargetID: "target-" + id[:8], TargetName: "Target " + id[:4], Reason: "ticket",
		Started: started, Deadline: started.Add(time.Hour),
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func mustRecord(t *testing.T, s *Store, e loginas.Entry) {
	t.Helper()
	if err := s.Record(context.Background(), e); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

func history(t *testing.T, s *Store, target string) []loginas.Entry {
	t.Helper()
	got, err := s.History(context.Background(), target, time.Time{}, 100)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return got
}
