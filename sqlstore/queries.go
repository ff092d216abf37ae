package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
)

// query names one statement of the store.
type query int

const (
	qStart query = iota
	qPrune
	qEntry
	qEndID
	qEndActor
	qEndTarget
	qLive
	qLiveTarget
	qRecord
	qHistory
	qHasNotices
	qTakeNotices
	qSetConsent
	qDeleteConsent
	qConsent
	qAudit
	qEvents
	qEventsAction
	qEventsUser
	qEventsUserAction
	qCountSince
	numQueries
)

// entryColumns are the columns scanEntry reads, in its order.
const entryColumns = `id, actor_id, actor_name, target_id, target_name, reason, started, deadline, ended, cause`

// insertEntry inserts one impersonation; qRecord adds an upsert to it.
const insertEntry = `INSERT INTO loginas_impersonations (` + entryColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// eventColumns are the columns scanEvent reads, in its order.
const eventColumns = `id, action, cause, impersonation_id, actor_id, actor_name, target_id, target_name,
	reason, detail, deadline, at, client_ip, user_agent, method, path`

// pruneBatch is how many expired impersonations one Start deletes at most
// under Options.Retention.
const pruneBatch = 16

// queries holds the statements with ? placeholders. INDEXED(name) names the
// index a statement is meant to read: Dialect.rebind makes it an INDEXED BY
// clause for SQLite, whose planner could otherwise pick, from its
// statistics, a plan that reads more rows as the table grows, and drops it
// for PostgreSQL.
var queries = [numQueries]string{
	qStart: insertEntry,
	qPrune: `DELETE FROM loginas_impersonations WHERE id IN (
	SELECT id FROM loginas_impersonations INDEXED(loginas_impersonations_deadline) WHERE deadline < ? ORDER BY deadline LIMIT ` + strconv.Itoa(pruneBatch) + `)`,
	qEntry:      `SELECT ` + entryColumns + ` FROM loginas_impersonations WHERE id = ?`,
	qEndID:      `UPDATE loginas_impersonations SET ended = ?, cause = ? WHERE id = ? AND ended IS NULL RETURNING ` + entryColumns,
	qEndActor:   `UPDATE loginas_impersonations INDEXED(loginas_impersonations_live_actor) SET ended = ?, cause = ? WHERE actor_id = ? AND ended IS NULL AND deadline > ? RETURNING ` + entryColumns,
	qEndTarget:  `UPDATE loginas_impersonations INDEXED(loginas_impersonations_live_target) SET ended = ?, cause = ? WHERE target_id = ? AND ended IS NULL AND deadline > ? RETURNING ` + entryColumns,
	qLive:       `SELECT ` + entryColumns + ` FROM loginas_impersonations INDEXED(loginas_impersonations_live) WHERE ended IS NULL AND deadline > ? ORDER BY started DESC, id DESC LIMIT ?`,
	qLiveTarget: `SELECT ` + entryColumns + ` FROM loginas_impersonations INDEXED(loginas_impersonations_live_target) WHERE target_id = ? AND ended IS NULL AND deadline > ? ORDER BY started DESC, id DESC LIMIT ?`,
	// A Record of a live entry does not bring back one that has ended.
	qRecord: insertEntry + `
	ON CONFLICT (id) DO UPDATE SET
		actor_id = excluded.actor_id, actor_name = excluded.actor_name,
		target_id = excluded.target_id, target_name = excluded.target_name,
		reason = excluded.reason, started = excluded.started, deadline = excluded.deadline,
		ended = COALESCE(excluded.ended, loginas_impersonations.ended),
		cause = CASE WHEN excluded.ended IS NULL THEN loginas_impersonations.cause ELSE excluded.cause END`,
	qHistory:     `SELECT ` + entryColumns + ` FROM loginas_impersonations INDEXED(loginas_impersonations_target) WHERE target_id = ? AND started < ? ORDER BY started DESC, id DESC LIMIT ?`,
	qHasNotices:  `SELECT 1 FROM loginas_impersonations INDEXED(loginas_impersonations_notices) WHERE target_id = ? AND ` + pendingNotice + ` LIMIT 1`,
	qTakeNotices: `UPDATE loginas_impersonations INDEXED(loginas_impersonations_notices) SET noticed = TRUE WHERE target_id = ? AND ` + pendingNotice + ` RETURNING ` + entryColumns,

	qSetConsent: `INSERT INTO loginas_consents (target_id, granted_until) VALUES (?, ?)
	ON CONFLICT (target_id) DO UPDATE SET granted_until = excluded.granted_until`,
	qDeleteConsent: `DELETE FROM loginas_consents WHERE target_id = ?`,
	qConsent:       `SELECT granted_until FROM loginas_consents WHERE target_id = ?`,

	qAudit: `INSERT INTO loginas_events (action, cause, impersonation_id, actor_id, actor_name, target_id, target_name,
	reason, detail, deadline, at, client_ip, user_agent, method, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	qEvents:       `SELECT ` + eventColumns + ` FROM loginas_events WHERE id < ? ORDER BY id DESC LIMIT ?`,
	qEventsAction: `SELECT ` + eventColumns + ` FROM loginas_events INDEXED(loginas_events_action) WHERE action = ? AND id < ? ORDER BY id DESC LIMIT ?`,
	// Two range scans, one per index, each at most a page, merged.
	qEventsUser: `SELECT * FROM (SELECT ` + eventColumns + ` FROM loginas_events INDEXED(loginas_events_actor) WHERE actor_id = ? AND id < ? ORDER BY id DESC LIMIT ?) AS by_actor
	UNION
	SELECT * FROM (SELECT ` + eventColumns + ` FROM loginas_events INDEXED(loginas_events_target) WHERE target_id = ? AND id < ? ORDER BY id DESC LIMIT ?) AS by_target
	ORDER BY id DESC LIMIT ?`,
	qEventsUserAction: `SELECT * FROM (SELECT ` + eventColumns + ` FROM loginas_events INDEXED(loginas_events_actor) WHERE actor_id = ? AND action = ? AND id < ? ORDER BY id DESC LIMIT ?) AS by_actor
	UNION
	SELECT * FROM (SELECT ` + eventColumns + ` FROM loginas_events INDEXED(loginas_events_target) WHERE target_id = ? AND action = ? AND id < ? ORDER BY id DESC LIMIT ?) AS by_target
	ORDER BY id DESC LIMIT ?`,
	qCountSince: `SELECT COUNT(*) FROM loginas_events INDEXED(loginas_events_action_at) WHERE action = ? AND at >= ?`,
}

// stmt returns the prepared statement of q, preparing it on first use. A
// statement that fails to prepare (the database is down, the tables are
// missing) is prepared again on the next call. database/sql prepares it
// again on each connection of the pool that runs it.
func (s *Store) stmt(ctx context.Context, q query) (*sql.Stmt, error) {
	if st := s.stmts[q].Load(); st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.sql[q])
	if err != nil {
		return nil, err
	}
	if !s.stmts[q].CompareAndSwap(nil, st) {
		st.Close()
		return s.stmts[q].Load(), nil
	}
	return st, nil
}

// query runs q, which returns rows.
func (s *Store) query(ctx context.Context, q query, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// exec runs q, which returns no rows.
func (s *Store) exec(ctx context.Context, q query, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// queryRow runs q, which returns at most one row, and scans it into dest.
// It returns sql.ErrNoRows when there is none.
func (s *Store) queryRow(ctx context.Context, q query, args []any, dest ...any) error {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}
