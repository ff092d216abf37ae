package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-loginas/loginas/sqlstore/pgtest"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// backend is one engine the tests run on.
type backend struct {
	dialect Dialect
	// fresh returns the data source name of a new, empty database.
	fresh func(t testing.TB) string
	// driver is the name of the database/sql driver.
	driver string
}

// sqliteBackend keeps each database in a file of its test's temporary
// directory.
func sqliteBackend() backend {
	return backend{
		dialect: SQLite,
		driver:  "sqlite",
		fresh: func(t testing.TB) string {
			return "file:" + filepath.Join(t.TempDir(), "loginas.db") +
				"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
		},
	}
}

// postgresBackend makes each database on srv.
func postgresBackend(srv *pgtest.Server) backend {
	return backend{dialect: Postgres, driver: "pgx", fresh: srv.NewDatabase}
}

// open opens a new pool on the database dsn names, closed when t ends.
func (b backend) open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(b.driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// store returns a migrated Store with opts on a new pool over dsn.
func (b backend) store(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s := NewWithOptions(b.open(t, dsn), b.dialect, opts)
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// newStore returns a migrated Store on a new, empty database.
func (b backend) newStore(t testing.TB) *Store {
	t.Helper()
	return b.store(t, b.fresh(t), Options{})
}

// timeout is a context for one call that must not hang.
func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
