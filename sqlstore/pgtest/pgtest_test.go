package pgtest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/gin-loginas/loginas/sqlstore/pgtest"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestStartStopStart checks the server's life: it answers on URL, goes away
// with Stop, comes back with Start on the same port and data, makes new
// databases, and is gone with its directory when the test ends.
func TestStartStopStart(t *testing.T) {
	var dir string
	t.Run("Server", func(t *testing.T) {
		srv := pgtest.Start(t)
		dir = srv.Dir
		db, err := sql.Open("pgx", srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ping := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := db.ExecContext(ctx, "INSERT INTO kept VALUES (1)")
			return err
		}
		if _, err := db.Exec("CREATE TABLE kept (n int)"); err != nil {
			t.Fatalf("CREATE TABLE on %s: %v", srv.URL, err)
		}
		srv.Stop(t)
		if err := ping(); err == nil {
			t.Fatal("the server answers after Stop")
		}
		srv.Start(t)
		if err := ping(); err != nil {
			t.Fatalf("after Start again: %v", err)
		}
		other, err := sql.Open("pgx", srv.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.Exec("SELECT * FROM kept"); err == nil {
			t.Fatal("a new database has the tables of another")
		}
	})
	if dir == "" {
		return // skipped
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the server's directory %s is still there: %v", dir, err)
	}
}
