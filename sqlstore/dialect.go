package sqlstore

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Dialect names the SQL engine behind the *sql.DB. It decides the
// placeholders, the column types and how migrations are serialized.
type Dialect int

// The supported engines.
const (
	// SQLite is SQLite 3.35 or later (for RETURNING), as modernc.org/sqlite
	// provides it.
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL 12 or later, as the pgx stdlib driver reaches
	// it.
	Postgres
)

// String returns the engine's name.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// check panics on a Dialect that is neither SQLite nor Postgres.
func (d Dialect) check() {
	if d != SQLite && d != Postgres {
		panic(fmt.Sprintf("sqlstore: unknown dialect %d", int(d)))
	}
}

// indexed matches the INDEXED(name) marks of the queries.
var indexed = regexp.MustCompile(`INDEXED\((\w+)\) `)

// rebind writes query for the dialect: INDEXED(name) as INDEXED BY name for
// SQLite and as nothing for PostgreSQL, and the ? placeholders as $1, $2, …
// for PostgreSQL. The queries of this package hold no ? inside a literal.
func (d Dialect) rebind(query string) string {
	if d != Postgres {
		return indexed.ReplaceAllString(query, "INDEXED BY $1 ")
	}
	query = indexed.ReplaceAllString(query, "")
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
