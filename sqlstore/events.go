package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gin-loginas/loginas"
)

// The page sizes of Events.
const (
	// DefaultEventLimit is the page size when EventQuery.Limit is zero or
	// less.
	DefaultEventLimit = 100
	// MaxEventLimit is the largest page size; a larger EventQuery.Limit is
	// cut to it.
	MaxEventLimit = 1000
)

// StoredEvent is an audit event as Audit stored it, with its ID: IDs grow
// with every event, so they order the trail and serve as its page cursor.
type StoredEvent struct {
	ID int64
	loginas.Event
}

// EventQuery picks one page of the audit trail for Events.
type EventQuery struct {
	// UserID keeps the events whose actor or target is this user; "" keeps
	// every one.
	UserID string
	// Action keeps the events of this action; "" keeps every one.
	Action loginas.Action
	// Before keeps the events whose ID is less than Before: the ID of the
	// last event of the previous page. Zero (or less) starts at the newest.
	Before int64
	// Limit is the page size: DefaultEventLimit when zero or less, and at
	// most MaxEventLimit.
	Limit int
}

// Audit appends e to the audit trail, every field of it. It fits
// loginas.Options.Audit.
func (s *Store) Audit(ctx context.Context, e loginas.Event) error {
	if _, err := s.exec(ctx, qAudit,
		string(e.Action), string(e.Cause), e.ImpersonationID, e.ActorID, e.ActorName, e.TargetID, e.TargetName,
		e.Reason, e.Detail, nullMicros(e.Deadline), micros(e.Time), e.ClientIP, e.UserAgent, e.Method, e.Path,
	); err != nil {
		return fmt.Errorf("sqlstore: audit: %w", err)
	}
	return nil
}

// Events returns one page of the audit trail, newest first. The next page
// is the query again with Before set to the ID of the last event returned;
// a page shorter than the limit is the last. It reads about one page of an
// index whatever the size of the trail, except when both UserID and Action
// are set: then it reads that user's events until it has a page of the
// action.
func (s *Store) Events(ctx context.Context, q EventQuery) ([]StoredEvent, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	limit = min(limit, MaxEventLimit)
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	var rows *sql.Rows
	var err error
	switch action := string(q.Action); {
	case q.UserID == "" && action == "":
		rows, err = s.query(ctx, qEvents, before, limit)
	case q.UserID == "":
		rows, err = s.query(ctx, qEventsAction, action, before, limit)
	case action == "":
		rows, err = s.query(ctx, qEventsUser, q.UserID, before, limit, q.UserID, before, limit, limit)
	default:
		rows, err = s.query(ctx, qEventsUserAction, q.UserID, action, before, limit, q.UserID, action, before, limit, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: events: %w", err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: events: %w", err)
	}
	return events, nil
}

// CountSince returns how many events of the action happened at or after
// since. It counts in an index on (action, time), so its cost grows with the
// events in the window, not with the trail. The action must not be empty.
func (s *Store) CountSince(ctx context.Context, action loginas.Action, since time.Time) (int, error) {
	if action == "" {
		return 0, errors.New("sqlstore: count since: no action")
	}
	var n int
	if err := s.queryRow(ctx, qCountSince, []any{string(action), micros(since)}, &n); err != nil {
		return 0, fmt.Errorf("sqlstore: count since: %w", err)
	}
	return n, nil
}

// scanEvents reads rows of eventColumns and closes rows.
func scanEvents(rows *sql.Rows) ([]StoredEvent, error) {
	defer rows.Close()
	var events []StoredEvent
	for rows.Next() {
		var e StoredEvent
		var action, cause string
		var deadline sql.NullInt64
		var at int64
		if err := rows.Scan(&e.ID, &action, &cause, &e.ImpersonationID, &e.ActorID, &e.ActorName, &e.TargetID, &e.TargetName,
			&e.Reason, &e.Detail, &deadline, &at, &e.ClientIP, &e.UserAgent, &e.Method, &e.Path); err != nil {
			return nil, err
		}
		e.Action, e.Cause, e.Deadline, e.Time = loginas.Action(action), loginas.Cause(cause), fromNullMicros(deadline), fromMicros(at)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, rows.Close()
}
