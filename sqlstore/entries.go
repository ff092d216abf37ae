package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gin-loginas/loginas"
)

// Start records a new live impersonation. With Options.Retention, it first
// deletes at most 16 impersonations whose deadline is more than Retention
// before e.Started; when that fails, it does not record e.
func (s *Store) Start(ctx context.Context, e loginas.Entry) error {
	if s.retention > 0 {
		if _, err := s.exec(ctx, qPrune, micros(e.Started.Add(-s.retention))); err != nil {
			return fmt.Errorf("sqlstore: start: delete old impersonations: %w", err)
		}
	}
	if _, err := s.exec(ctx, qStart, entryArgs(e)...); err != nil {
		return fmt.Errorf("sqlstore: start: %w", err)
	}
	return nil
}

// Entry returns the entry with the given ID, or loginas.ErrNoEntry.
func (s *Store) Entry(ctx context.Context, id string) (loginas.Entry, error) {
	rows, err := s.query(ctx, qEntry, id)
	if err != nil {
		return loginas.Entry{}, fmt.Errorf("sqlstore: entry: %w", err)
	}
	entries, err := scanEntries(rows)
	if err != nil {
		return loginas.Entry{}, fmt.Errorf("sqlstore: entry: %w", err)
	}
	if len(entries) == 0 {
		return loginas.Entry{}, loginas.ErrNoEntry
	}
	return entries[0], nil
}

// End marks the entries that sel picks and that have not ended yet as ended
// at the given time, with cause, and returns them. It is one UPDATE …
// RETURNING: of concurrent calls, on any instance, exactly one returns a
// given entry. Exactly one field of sel must be set.
func (s *Store) End(ctx context.Context, sel loginas.Selector, cause loginas.Cause, at time.Time) ([]loginas.Entry, error) {
	var rows *sql.Rows
	var err error
	switch {
	case sel.ID != "" && sel.ActorID == "" && sel.TargetID == "":
		rows, err = s.query(ctx, qEndID, micros(at), string(cause), sel.ID)
	case sel.ActorID != "" && sel.ID == "" && sel.TargetID == "":
		rows, err = s.query(ctx, qEndActor, micros(at), string(cause), sel.ActorID, micros(at))
	case sel.TargetID != "" && sel.ID == "" && sel.ActorID == "":
		rows, err = s.query(ctx, qEndTarget, micros(at), string(cause), sel.TargetID, micros(at))
	default:
		return nil, errors.New("sqlstore: end: the selector must set exactly one of ID, ActorID and TargetID")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: end: %w", err)
	}
	ended, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: end: %w", err)
	}
	return ended, nil
}

// Live returns the impersonations live at now, newest first, at most limit:
// those of targetID's account, or every one when targetID is "". It reads
// only live rows, through a partial index.
func (s *Store) Live(ctx context.Context, targetID string, now time.Time, limit int) ([]loginas.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows *sql.Rows
	var err error
	if targetID == "" {
		rows, err = s.query(ctx, qLive, micros(now), limit)
	} else {
		rows, err = s.query(ctx, qLiveTarget, targetID, micros(now), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: live: %w", err)
	}
	live, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: live: %w", err)
	}
	return live, nil
}

// entryArgs are the values of entryColumns for e.
func entryArgs(e loginas.Entry) []any {
	return []any{
		e.ID, e.ActorID, e.ActorName, e.TargetID, e.TargetName, e.Reason,
		micros(e.Started), micros(e.Deadline), nullMicros(e.Ended), string(e.Cause),
	}
}

// scanEntries reads rows of entryColumns and closes rows.
func scanEntries(rows *sql.Rows) ([]loginas.Entry, error) {
	defer rows.Close()
	var entries []loginas.Entry
	for rows.Next() {
		var e loginas.Entry
		var started, deadline int64
		var ended sql.NullInt64
		var cause string
		if err := rows.Scan(&e.ID, &e.ActorID, &e.ActorName, &e.TargetID, &e.TargetName, &e.Reason,
			&started, &deadline, &ended, &cause); err != nil {
			return nil, err
		}
		e.Started, e.Deadline, e.Ended, e.Cause = fromMicros(started), fromMicros(deadline), fromNullMicros(ended), loginas.Cause(cause)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return entries, rows.Close()
}

// newestFirst sorts entries by start, newest first.
func newestFirst(entries []loginas.Entry) {
	slices.SortFunc(entries, func(a, b loginas.Entry) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
}
