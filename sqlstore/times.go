package sqlstore

import (
	"database/sql"
	"time"
)

// The tables keep times as Unix microseconds, in UTC.

// micros is t as stored.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros is t as stored in a nullable column: NULL for the zero time.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros is the time v stands for, in UTC. The zero time round-trips.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// fromNullMicros is the time v stands for, or the zero time for NULL.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}
