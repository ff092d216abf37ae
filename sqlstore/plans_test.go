package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
)

// testPlans asks the engine how it runs each query the plugin makes on a
// request or an admin page, on tables with statistics, and checks that each
// reads through the index meant for it and that none scans a whole table
// (or a whole index).
func testPlans(t *testing.T, b backend) {
	s := b.newStore(t)
	ctx := context.Background()
	fill(t, s, 400, 2000)
	if _, err := s.db.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatalf("ANALYZE: %v", err)
	}
	now := micros(time.Now())
	maxID := int64(math.MaxInt64)
	for _, c := range []struct {
		name  string
		q     query
		args  []any
		index []string // an index each plan must use
	}{
		{"Entry", qEntry, []any{"id"}, []string{"PRIMARY KEY|pkey|autoindex"}},
		{"EndByID", qEndID, []any{now, "logout", "id"}, []string{"PRIMARY KEY|pkey|autoindex"}},
		{"EndByActor", qEndActor, []any{now, "ended", "actor-1", now}, []string{"loginas_impersonations_live_actor"}},
		{"EndByTarget", qEndTarget, []any{now, "ended", "target-1", now}, []string{"loginas_impersonations_live_target"}},
		{"Live", qLive, []any{now, 50}, []string{"loginas_impersonations_live"}},
		{"LiveTarget", qLiveTarget, []any{"target-1", now, 50}, []string{"loginas_impersonations_live_target"}},
		{"History", qHistory, []any{"target-1", maxID, 20}, []string{"loginas_impersonations_target"}},
		{"HasNotices", qHasNotices, []any{"target-1"}, []string{"loginas_impersonations_notices"}},
		{"TakeNotices", qTakeNotices, []any{"target-1"}, []string{"loginas_impersonations_notices"}},
		{"Prune", qPrune, []any{now}, []string{"loginas_impersonations_deadline"}},
		{"Consent", qConsent, []any{"target-1"}, []string{"PRIMARY KEY|pkey|autoindex"}},
		{"Events", qEvents, []any{maxID, 100}, []string{"PRIMARY KEY|pkey"}},
		// PostgreSQL may instead walk the primary key back from the newest,
		// when its statistics say the action is common.
		{"EventsAction", qEventsAction, []any{"start", maxID, 100}, []string{"loginas_events_action" + pgOnly("|loginas_events_pkey", b.dialect)}},
		{"EventsUser", qEventsUser, []any{"user-1", maxID, 100, "user-1", maxID, 100, 100}, []string{"loginas_events_actor", "loginas_events_target"}},
		{"EventsUserAction", qEventsUserAction, []any{"user-1", "end", maxID, 100, "user-1", "end", maxID, 100, 100}, []string{"loginas_events_actor", "loginas_events_target"}},
		{"CountSince", qCountSince, []any{"start", now - 3600e6}, []string{"loginas_events_action_at"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := explain(t, s, s.sql[c.q], c.args)
			for _, line := range plan {
				if fullScan(b.dialect, line) {
					t.Errorf("full scan: %s\nplan:\n%s", line, strings.Join(plan, "\n"))
				}
			}
			for _, index := range c.index {
				if !usesIndex(plan, index) {
					t.Errorf("the plan does not use %s:\n%s", index, strings.Join(plan, "\n"))
				}
			}
			if testing.Verbose() {
				t.Logf("plan:\n%s", strings.Join(plan, "\n"))
			}
		})
	}
}

// pgOnly is alt on PostgreSQL, and "" on SQLite.
func pgOnly(alt string, d Dialect) string {
	if d == Postgres {
		return alt
	}
	return ""
}

// explain returns the engine's plan of query, one line a step. On
// PostgreSQL sequential scans are turned off, so that a plan shows one only
// when no index can serve the query.
func explain(t *testing.T, s *Store, query string, args []any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prefix := "EXPLAIN QUERY PLAN "
	if s.dialect == Postgres {
		prefix = "EXPLAIN "
		if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, "RESET enable_seqscan")
	}
	rows, err := conn.QueryContext(ctx, prefix+query, args...)
	if err != nil {
		t.Fatalf("%s%s: %v", prefix, query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, string(*vals[len(vals)-1].(*sql.RawBytes)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// fullScan reports whether a line of a plan reads a whole table or index.
func fullScan(d Dialect, line string) bool {
	line = strings.TrimSpace(line)
	if d == SQLite {
		// "SCAN loginas_events" reads the table, "SCAN … USING INDEX" the
		// whole index; SEARCH reads a range.
		return strings.HasPrefix(line, "SCAN loginas_")
	}
	return strings.Contains(line, "Seq Scan on loginas_")
}

// usesIndex reports whether the plan mentions one of the |-separated names.
func usesIndex(plan []string, names string) bool {
	for _, line := range plan {
		for _, name := range strings.Split(names, "|") {
			if strings.Contains(line, name) {
				return true
			}
		}
	}
	return false
}

// fill adds n impersonations, most of them over, of n/4 targets, and m
// audit events of m/10 users and one "admin" who is the actor of a fifth of
// them, in one transaction.
func fill(t testing.TB, s *Store, n, m int) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	start, err := tx.PrepareContext(ctx, s.sql[qStart])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		e := newEntry(now.Add(-time.Duration(n-i) * time.Minute))
		e.ActorID, e.TargetID = fmt.Sprintf("actor-%d", i%10), fmt.Sprintf("target-%d", i%(n/4+1))
		if i < n*9/10 {
			e.Ended, e.Cause = e.Started.Add(time.Minute), loginas.CauseLogout
		}
		if _, err := start.ExecContext(ctx, entryArgs(e)...); err != nil {
			t.Fatal(err)
		}
	}
	if n > 0 {
		// Most notices have been handed out.
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE loginas_impersonations SET noticed = TRUE WHERE started < ?`),
			micros(now.Add(-time.Duration(n/20)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	ins, err := tx.PrepareContext(ctx, s.sql[qAudit])
	if err != nil {
		t.Fatal(err)
	}
	actions := []loginas.Action{loginas.ActionStart, loginas.ActionEnd, loginas.ActionDenied, loginas.ActionConsent}
	for i := range m {
		e := loginas.Event{
			Action: actions[i%len(actions)], Cause: loginas.CauseLogout, ImpersonationID: randomID(),
			ActorID: fmt.Sprintf("user-%d", i%(m/10+1)), ActorName: "Actor", TargetID: fmt.Sprintf("user-%d", (i*7)%(m/10+1)),
			TargetName: "Target", Reason: "ticket", Time: now.Add(-time.Duration(m-i) * time.Minute),
			ClientIP: "127.0.0.1", UserAgent: "test", Method: "POST", Path: "/loginas/1",
		}
		if i%5 == 0 {
			e.ActorID = "admin" // one user who acts a lot
		}
		if _, err := ins.ExecContext(ctx,
			string(e.Action), string(e.Cause), e.ImpersonationID, e.ActorID, e.ActorName, e.TargetID, e.TargetName,
			e.Reason, e.Detail, nullMicros(e.Deadline), micros(e.Time), e.ClientIP, e.UserAgent, e.Method, e.Path); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
