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

// Record stores e under its ID, inserting it or updating the row that
// Start, End or an earlier Record wrote: for an app whose Store is another
// one. A Record of a live entry (zero Ended) leaves an entry that has ended
// ended. The plugin does not call it when the Store is also the History,
// since Start and End write the same rows.
func (s *Store) Record(ctx context.Context, e loginas.Entry) error {
	if _, err := s.exec(ctx, qRecord, entryArgs(e)...); err != nil {
		return fmt.Errorf("sqlstore: record: %w", err)
	}
	return nil
}

// History returns the impersonations of targetID's account that started
// before before (any, when before is zero), newest first, at most limit. It
// reads them through the index on (target_id, started).
func (s *Store) History(ctx context.Context, targetID string, before time.Time, limit int) ([]loginas.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := int64(math.MaxInt64)
	if !before.IsZero() {
		until = micros(before)
	}
	rows, err := s.query(ctx, qHistory, targetID, until, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: history: %w", err)
	}
	entries, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: history: %w", err)
	}
	return entries, nil
}

// TakeNotices returns the impersonations of targetID's account that have
// ended, other than those that failed, and that no call has returned yet,
// newest first, and marks them told. It first looks for one in a partial
// index of the notices not yet handed out, and writes only when there is
// one; the write is one UPDATE … RETURNING, so of concurrent calls, on any
// instance, exactly one returns a given notice.
func (s *Store) TakeNotices(ctx context.Context, targetID string) ([]loginas.Entry, error) {
	var one int
	switch err := s.queryRow(ctx, qHasNotices, []any{targetID}, &one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("sqlstore: take notices: %w", err)
	}
	rows, err := s.query(ctx, qTakeNotices, targetID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: take notices: %w", err)
	}
	notices, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: take notices: %w", err)
	}
	newestFirst(notices)
	return notices, nil
}
