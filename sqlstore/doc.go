// Package sqlstore keeps the impersonations of the loginas plugin, with their
// history, the one-time notices, the consents and the audit trail, in a SQL
// database that every instance of the app shares: SQLite or PostgreSQL,
// through database/sql.
//
// The app opens the *sql.DB with the driver of its choice (modernc.org/sqlite
// registers "sqlite", github.com/jackc/pgx/v5/stdlib registers "pgx"), runs
// Migrate once at start-up, or applies Schema with its own migrations, and
// hands the Store to the plugin:
//
//	store := sqlstore.New(db, sqlstore.Postgres)
//	if err := store.Migrate(ctx); err != nil {
//		return err
//	}
//	if _, err := loginas.Register(router, loginas.Options{
//		// ...
//		Store: store,       // History and Consents too: the plugin finds them
//		Audit: store.Audit, // the audit trail, read back with Events
//	}); err != nil {
//		return err
//	}
//
// Every query the plugin makes on a request reads a bounded number of rows
// through an index, whatever the size of the tables.
package sqlstore
