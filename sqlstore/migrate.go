package sqlstore

import (
	"context"
	"fmt"
)

// migrateLock is the PostgreSQL advisory lock that serializes the Migrate
// calls of several instances.
const migrateLock = 0x6c6f67696e6173 // "loginas"

// Migrate creates the tables and indexes of Schema that are missing. It is
// idempotent, and safe when several instances run it at once: on
// PostgreSQL it runs in one transaction under an advisory lock; on SQLite
// each statement is atomic on its own, and concurrent writers wait for one
// another as long as the connection's busy_timeout allows.
func (s *Store) Migrate(ctx context.Context) error {
	if s.dialect == Postgres {
		return s.migratePostgres(ctx)
	}
	for _, stmt := range schema(s.dialect) {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
	}
	return nil
}

func (s *Store) migratePostgres(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("sqlstore: migrate: lock: %w", err)
	}
	for _, stmt := range schema(s.dialect) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}
