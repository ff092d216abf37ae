package sqlstore

import (
	"strings"

	"github.com/gin-loginas/loginas"
)

// Schema returns the SQL that creates the tables and indexes of the store
// for the dialect, for apps that run their migrations themselves. Every
// statement is CREATE … IF NOT EXISTS, so it can run again. Migrate runs the
// same statements.
func Schema(d Dialect) string {
	d.check()
	return strings.Join(schema(d), ";\n\n") + ";\n"
}

// schema returns the statements of Schema, one by one. Times are Unix
// microseconds in BIGINT columns on both engines.
func schema(d Dialect) []string {
	eventID := "id               INTEGER PRIMARY KEY AUTOINCREMENT"
	if d == Postgres {
		eventID = "id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return []string{
		`-- One row per impersonation: Start inserts it, End sets ended and
-- cause, TakeNotices sets noticed. Times are Unix microseconds.
CREATE TABLE IF NOT EXISTS loginas_impersonations (
	id          TEXT PRIMARY KEY,
	actor_id    TEXT NOT NULL,
	actor_name  TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	target_name TEXT NOT NULL,
	reason      TEXT NOT NULL,
	started     BIGINT NOT NULL,
	deadline    BIGINT NOT NULL,
	ended       BIGINT,
	cause       TEXT NOT NULL DEFAULT '',
	noticed     BOOLEAN NOT NULL DEFAULT FALSE
)`,
		`-- History: a target's impersonations, newest first.
CREATE INDEX IF NOT EXISTS loginas_impersonations_target
	ON loginas_impersonations (target_id, started, id)`,
		`-- Live of every account: the live impersonations, by deadline.
CREATE INDEX IF NOT EXISTS loginas_impersonations_live
	ON loginas_impersonations (deadline) WHERE ended IS NULL`,
		`-- Live of one account, and End by target.
CREATE INDEX IF NOT EXISTS loginas_impersonations_live_target
	ON loginas_impersonations (target_id, deadline) WHERE ended IS NULL`,
		`-- End by actor.
CREATE INDEX IF NOT EXISTS loginas_impersonations_live_actor
	ON loginas_impersonations (actor_id, deadline) WHERE ended IS NULL`,
		`-- TakeNotices: the notices not yet handed out.
CREATE INDEX IF NOT EXISTS loginas_impersonations_notices
	ON loginas_impersonations (target_id) WHERE ` + pendingNotice,
		`-- Options.Retention: the oldest deadlines first.
CREATE INDEX IF NOT EXISTS loginas_impersonations_deadline
	ON loginas_impersonations (deadline)`,

		`-- One row per person who has granted access to their account.
CREATE TABLE IF NOT EXISTS loginas_consents (
	target_id     TEXT PRIMARY KEY,
	granted_until BIGINT NOT NULL
)`,

		`-- The audit trail: one row per loginas.Event; at is its Time.
CREATE TABLE IF NOT EXISTS loginas_events (
	` + eventID + `,
	action           TEXT NOT NULL,
	cause            TEXT NOT NULL,
	impersonation_id TEXT NOT NULL,
	actor_id         TEXT NOT NULL,
	actor_name       TEXT NOT NULL,
	target_id        TEXT NOT NULL,
	target_name      TEXT NOT NULL,
	reason           TEXT NOT NULL,
	detail           TEXT NOT NULL,
	deadline         BIGINT,
	at               BIGINT NOT NULL,
	client_ip        TEXT NOT NULL,
	user_agent       TEXT NOT NULL,
	method           TEXT NOT NULL,
	path             TEXT NOT NULL
)`,
		`-- Events of a user: one range scan for the actor, one for the target.
CREATE INDEX IF NOT EXISTS loginas_events_actor ON loginas_events (actor_id, id)`,
		`CREATE INDEX IF NOT EXISTS loginas_events_target ON loginas_events (target_id, id)`,
		`-- Events of an action.
CREATE INDEX IF NOT EXISTS loginas_events_action ON loginas_events (action, id)`,
		`-- CountSince.
CREATE INDEX IF NOT EXISTS loginas_events_action_at ON loginas_events (action, at)`,
	}
}

// pendingNotice is the condition of a notice not yet handed out. The partial
// index loginas_impersonations_notices and the queries of TakeNotices spell
// it the same way, so that both engines match them.
const pendingNotice = `ended IS NOT NULL AND NOT noticed AND cause <> '` + string(loginas.CauseFailed) + `'`
