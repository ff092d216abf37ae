package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two instances share one SQLite file (sqlstore) and the cookie secret, each
// with -entry-cache 1s. An end is enforced at once on the instance that
// made it, and on the other one within the second, on a real server with
// real cookies.
func TestEntryCacheAcrossInstances(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "shared.db")
	cfg := appConfig{DB: db, Extra: []string{"-entry-cache", "1s"}}
	a := startApp(t, "A", cfg) // seeds the file
	b := startApp(t, "B", cfg)
	const ttl = time.Second
	for _, inst := range []*app{a, b} {
		if out := inst.proc.out.String(); !strings.Contains(out, "(impersonations cached for 1s)") {
			t.Fatalf("%s does not say it caches impersonations:\n%s", inst.name, tail(out, 2000))
		}
	}
	signedOut := meInfo{Status: http.StatusUnauthorized}

	t.Run("an end here takes effect here at once", func(t *testing.T) {
		c := newClient(t)
		c.login(a.URL, "admin", "admin")
		mustSwitch(t, c, a, aliceID, "entry cache")
		copied := c.cookies(a.URL)
		mustReturn(t, c, a)
		if me := withCookies(t, a.URL, copied).me(a.URL); me != signedOut {
			t.Errorf("a copy of the ended session on A = %+v, want %+v", me, signedOut)
		}
	})

	t.Run("an end on the other instance within the entry cache's time", func(t *testing.T) {
		c := newClient(t)
		c.login(a.URL, "root", "root")
		mustSwitch(t, c, a, bobID, "entry cache") // A caches the entry now
		cached := time.Now()
		copied := c.cookies(a.URL)
		onB := withCookies(t, b.URL, copied)
		mustReturn(t, onB, b)
		time.Sleep(time.Until(cached.Add(ttl + 200*time.Millisecond)))
		if me := withCookies(t, a.URL, copied).me(a.URL); me != signedOut {
			t.Errorf("on A, %s after it cached the entry that B ended: %+v, want %+v", ttl, me, signedOut)
		}
	})
}
