package sqlstore

import (
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/gin-loginas/loginas"
)

// Store keeps the plugin's impersonations, their history and notices, the
// consents and the audit trail in the tables of Schema. It implements
// loginas.Store, loginas.History and loginas.Consents, and its Audit method
// is an audit sink. It is safe for concurrent use, and several Stores, in
// one process or in many, may share one database.
type Store struct {
	db        *sql.DB
	dialect   Dialect
	retention time.Duration
	sql       [numQueries]string
	stmts     [numQueries]atomic.Pointer[sql.Stmt]
}

var (
	_ loginas.Store    = (*Store)(nil)
	_ loginas.History  = (*Store)(nil)
	_ loginas.Consents = (*Store)(nil)
)

// Options tunes a Store. The zero value is the default.
type Options struct {
	// Retention, when positive, is how long an impersonation is kept after
	// its deadline: each Start deletes a few of those whose deadline is
	// more than Retention before the new one's start, through an index.
	// Zero keeps every impersonation. The audit trail is not affected. A
	// positive value should be long enough for the people's access history
	// and at least 30 seconds (loginastest.CheckStore expects an entry that
	// long after its deadline).
	Retention time.Duration
}

// New returns a Store over db, an SQL database of the given dialect, with
// the default Options. It does not touch the database: run Migrate, or
// apply Schema, before use. The Store does not close db. It panics on a
// Dialect other than SQLite and Postgres.
func New(db *sql.DB, dialect Dialect) *Store {
	return NewWithOptions(db, dialect, Options{})
}

// NewWithOptions is New with Options.
func NewWithOptions(db *sql.DB, dialect Dialect, opts Options) *Store {
	dialect.check()
	s := &Store{db: db, dialect: dialect, retention: max(opts.Retention, 0)}
	for q, text := range queries {
		s.sql[q] = dialect.rebind(text)
	}
	return s
}

// Close releases the statements the Store has prepared; call it once the
// Store is no longer in use. It does not close the *sql.DB. A Store used
// after Close prepares its statements again.
func (s *Store) Close() error {
	var errs []error
	for i := range s.stmts {
		if st := s.stmts[i].Swap(nil); st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}
