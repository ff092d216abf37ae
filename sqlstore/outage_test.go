package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/sqlstore/pgtest"
)

// TestPostgresOutage stops the server under a Store that has been in use:
// every method fails fast, with an error that is not ErrNoEntry, and leaves
// nothing half-done; once the server is back, the same Store, on the same
// pool, works again on the data as it was.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	b := postgresBackend(srv)
	s := b.store(t, srv.URL, Options{Retention: time.Hour})
	s.db.SetMaxIdleConns(4)
	ctx := context.Background()
	now := time.Now()

	live := newEntry(now)
	done := newEntry(now)
	done.TargetID = live.TargetID
	for _, e := range []loginas.Entry{live, done} {
		if err := s.Start(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.End(ctx, loginas.Selector{ID: done.ID}, loginas.CauseLogout, now); err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Hour).Truncate(time.Microsecond).UTC()
	if err := s.SetConsent(ctx, live.TargetID, until); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, loginas.Event{Action: loginas.ActionStart, ActorID: live.ActorID, Time: now}); err != nil {
		t.Fatal(err)
	}
	// Every statement prepared, on a pool of several connections.
	for range 3 {
		calls(t, s, live, newEntry(now), now, func(string, error) {})
	}

	events, err := s.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	down := calls(t, s, live, live, now, func(name string, err error) {
		t.Logf("%s with the server down: %v", name, err)
		if err == nil {
			t.Errorf("%s with the server down: no error", name)
		} else if errors.Is(err, loginas.ErrNoEntry) {
			t.Errorf("%s with the server down: %v, which says the entry is unknown", name, err)
		}
	})

	srv.Start(t)
	if got, err := s.Entry(ctx, live.ID); err != nil || got.ID != live.ID || !got.Ended.IsZero() {
		t.Fatalf("Entry after the restart = %+v, %v; want it live: the failed End must not have ended it", got, err)
	}
	if got, err := s.Consent(ctx, live.TargetID); err != nil || !got.Equal(until) {
		t.Fatalf("Consent after the restart = %v, %v; want %v", got, err, until)
	}
	if got, err := s.TakeNotices(ctx, live.TargetID); err != nil || len(got) != 1 || got[0].ID != done.ID {
		t.Fatalf("TakeNotices after the restart = %+v, %v; want the notice the failed call did not take", got, err)
	}
	if got, err := s.Events(ctx, EventQuery{}); err != nil || len(got) != len(events) {
		t.Fatalf("Events after the restart = %d events, %v; want the %d stored before", len(got), err, len(events))
	}
	if _, err := s.Entry(ctx, down.ID); !errors.Is(err, loginas.ErrNoEntry) {
		t.Fatalf("Entry of the Start that failed = %v, want ErrNoEntry", err)
	}
	if ended, err := s.End(ctx, loginas.Selector{ID: live.ID}, loginas.CauseLogout, now); err != nil || len(ended) != 1 {
		t.Fatalf("End after the restart = %v, %v; want the live entry", ended, err)
	}
	calls(t, s, live, newEntry(now), now, func(name string, err error) {
		if err != nil {
			t.Errorf("%s after the restart: %v", name, err)
		}
	})
}

// calls makes one call of every method of s, each with a short timeout,
// and reports each error, or nil, to check. None may take long. It ends
// end, by ID and by actor, and returns the entry it started (and
// recorded).
func calls(t *testing.T, s *Store, e, end loginas.Entry, now time.Time, check func(name string, err error)) loginas.Entry {
	t.Helper()
	call := func(name string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := f(ctx)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %s", name, d)
		}
		check(name, err)
	}
	fresh := newEntry(now)
	call("Start", func(ctx context.Context) error { return s.Start(ctx, fresh) })
	call("Entry", func(ctx context.Context) error { _, err := s.Entry(ctx, e.ID); return err })
	call("End", func(ctx context.Context) error {
		_, err := s.End(ctx, loginas.Selector{ID: end.ID}, loginas.CauseLogout, now)
		return err
	})
	call("EndByActor", func(ctx context.Context) error {
		_, err := s.End(ctx, loginas.Selector{ActorID: end.ActorID}, loginas.CauseEnded, now)
		return err
	})
	call("Live", func(ctx context.Context) error { _, err := s.Live(ctx, e.TargetID, now, 10); return err })
	call("Record", func(ctx context.Context) error { return s.Record(ctx, fresh) })
	call("History", func(ctx context.Context) error { _, err := s.History(ctx, e.TargetID, time.Time{}, 10); return err })
	call("TakeNotices", func(ctx context.Context) error { _, err := s.TakeNotices(ctx, "no-such-target"); return err })
	call("SetConsent", func(ctx context.Context) error { return s.SetConsent(ctx, "no-such-target", now) })
	call("Consent", func(ctx context.Context) error { _, err := s.Consent(ctx, e.TargetID); return err })
	call("Audit", func(ctx context.Context) error {
		return s.Audit(ctx, loginas.Event{Action: loginas.ActionDenied, ActorID: "no-such-actor", Time: now})
	})
	call("Events", func(ctx context.Context) error { _, err := s.Events(ctx, EventQuery{UserID: e.ActorID}); return err })
	call("CountSince", func(ctx context.Context) error { _, err := s.CountSince(ctx, loginas.ActionStart, now); return err })
	call("Migrate", s.Migrate)
	return fresh
}
