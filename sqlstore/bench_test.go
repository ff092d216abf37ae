package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/sqlstore/pgtest"
)

// BenchmarkEvents reads pages of the audit trail at two sizes of the trail,
// on SQLite: the times per page should be the same at both.
func BenchmarkEvents(b *testing.B) {
	for _, rows := range []int{1000, 100_000} {
		s := sqliteBackend().newStore(b)
		fill(b, s, 0, rows)
		ctx := context.Background()
		checkpoint(b, s)
		newest, err := s.Events(ctx, EventQuery{Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		middle := newest[0].ID / 2
		for _, c := range []struct {
			name string
			q    EventQuery
		}{
			{"newest", EventQuery{Limit: 50}},
			{"middle", EventQuery{Before: middle, Limit: 50}},
			{"action", EventQuery{Action: loginas.ActionConsent, Before: middle, Limit: 50}},
			{"user", EventQuery{UserID: "user-7", Limit: 50}},
			{"busy-user", EventQuery{UserID: "admin", Before: middle, Limit: 50}},
		} {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, c.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := s.Events(ctx, c.q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("rows=%d/count-last-hour", rows), func(b *testing.B) {
			since := time.Now().Add(-time.Hour)
			for b.Loop() {
				if _, err := s.CountSince(ctx, loginas.ActionStart, since); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequest times what the plugin asks on requests, at two sizes of
// the impersonations table, on SQLite: Entry on every impersonated request,
// TakeNotices (with no notice) on every page of a signed-in user, and Live
// of one account.
func BenchmarkRequest(b *testing.B) {
	for _, rows := range []int{1000, 100_000} {
		s := sqliteBackend().newStore(b)
		fill(b, s, rows, 0)
		ctx := context.Background()
		checkpoint(b, s)
		live, err := s.Live(ctx, "", time.Now(), 1)
		if err != nil || len(live) != 1 {
			b.Fatalf("Live = %v, %v", live, err)
		}
		e := live[0]
		b.Run(fmt.Sprintf("rows=%d/Entry", rows), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Entry(ctx, e.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/TakeNotices-none", rows), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.TakeNotices(ctx, "target-none"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/Live-target", rows), func(b *testing.B) {
			now := time.Now()
			for b.Loop() {
				if _, err := s.Live(ctx, e.TargetID, now, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrepared compares Entry through the Store's prepared statement
// with the same query sent unprepared through the pool, on both engines.
func BenchmarkPrepared(b *testing.B) {
	for _, be := range []struct {
		name string
		b    func() backend
	}{
		{"sqlite", sqliteBackend},
		{"postgres", func() backend { return postgresBackend(pgtest.Start(b)) }},
	} {
		s := be.b().newStore(b)
		ctx := context.Background()
		e := newEntry(time.Now())
		if err := s.Start(ctx, e); err != nil {
			b.Fatal(err)
		}
		b.Run(be.name+"/prepared", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Entry(ctx, e.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/unprepared", func(b *testing.B) {
			for b.Loop() {
				rows, err := s.db.QueryContext(ctx, s.sql[qEntry], e.ID)
				if err != nil {
					b.Fatal(err)
				}
				if got, err := scanEntries(rows); err != nil || len(got) != 1 {
					b.Fatal(got, err)
				}
			}
		})
	}
}

// checkpoint copies SQLite's write-ahead log into the database file, as
// SQLite does on its own in the long run, so that a benchmark does not
// time the look-ups in a log that one bulk insert made long.
func checkpoint(b *testing.B, s *Store) {
	b.Helper()
	if _, err := s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
}
