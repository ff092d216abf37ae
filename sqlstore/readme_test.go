package sqlstore

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeSchema checks that the README shows the schema as it is.
func TestReadmeSchema(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```sql\n"+Schema(SQLite)+"```") {
		t.Errorf("README.md does not show Schema(SQLite) as it is; paste it again")
	}
	if pg := strings.Replace(Schema(Postgres), "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT", 1); pg != Schema(SQLite) {
		t.Errorf("Schema(Postgres) differs from Schema(SQLite) in more than the events' id, which the README says is the only difference")
	}
}
