package loginas_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gin-loginas/loginas"
)

// postToken sends a same-origin form with an explicit token.
func postToken(c *client, path, token string) *reply {
	c.t.Helper()
	return c.post(path, tokenForm(token), header("Origin", c.app.origin()))
}

// wantAdmin checks that the client is the admin, signed in as themselves.
func wantAdmin(t *testing.T, c *client) {
	t.Helper()
	st := c.page()
	if st.user() != "admin" || st.HasRecord || st.Impersonated {
		t.Fatalf("after the failure: user %q, record %v, impersonated %v; want the admin as themselves", st.user(), st.HasRecord, st.Impersonated)
	}
}

// wantImpersonating checks that the admin is still logged in as alice.
func wantImpersonating(t *testing.T, c *client) {
	t.Helper()
	st := c.page()
	if st.user() != "alice" || !st.HasRecord || !st.Impersonated || st.Current == nil || st.Current.ActorID != "admin" || st.Current.TargetID != "alice" {
		t.Fatalf("after the failure: %+v; want admin still logged in as alice", st)
	}
}

// want5xx checks a failure answer: a server error, with a body that says
// so without repeating the internal error.
func want5xx(t *testing.T, r *reply, internal error) {
	t.Helper()
	if r.status < 500 || r.status > 599 {
		t.Fatalf("status %d, want 5xx (body %q)", r.status, r.body)
	}
	if strings.TrimSpace(r.body) == "" {
		t.Errorf("5xx with an empty body")
	}
	if strings.Contains(r.body, internal.Error()) {
		t.Errorf("body %q repeats the internal error", r.body)
	}
}

// wantNoOrphans checks the server-side store: every session of the target
// still holds a record.
func wantNoOrphans(t *testing.T, store *faultStore) {
	t.Helper()
	for _, values := range store.sessionsOf("alice") {
		if _, ok := values[loginas.DefaultRecordKey].(string); !ok {
			t.Fatalf("a session of the target exists without its record: %v", values)
		}
	}
}

// signedInAdmin returns a client signed in as the admin, with a token.
func signedInAdmin(t *testing.T, a *testApp) (*client, string) {
	t.Helper()
	c := a.signedIn("admin")
	return c, c.page().Token
}

// impersonating returns a client of the admin logged in as alice, with a
// token for the banner's form.
func impersonating(t *testing.T, a *testApp) (*client, string) {
	t.Helper()
	c, token := signedInAdmin(t, a)
	if r := postToken(c, a.plugin.LoginAsURL("alice"), token); r.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d: %s", r.status, r.body)
	}
	wantImpersonating(t, c)
	return c, c.page().Token
}

func TestFaultUserDirectory(t *testing.T) {
	t.Parallel()
	for _, st := range sessionStores {
		t.Run("store="+st.name, func(t *testing.T) {
			t.Parallel()
			t.Run("switch", func(t *testing.T) {
				a := newApp(t, st, withFaults())
				c, token := signedInAdmin(t, a)
				a.users.failing.Store(true)
				r := postToken(c, a.plugin.LoginAsURL("alice"), token)
				a.users.failing.Store(false)
				want5xx(t, r, errUsersDown)
				wantAdmin(t, c)
				wantNoOrphans(t, a.faults)
			})
			t.Run("impersonated page", func(t *testing.T) {
				a := newApp(t, st, withFaults())
				c, _ := impersonating(t, a)
				a.users.failing.Store(true)
				r := c.get("/test/state")
				a.users.failing.Store(false)
				want5xx(t, r, errUsersDown)
				wantImpersonating(t, c)
			})
			t.Run("return", func(t *testing.T) {
				a := newApp(t, st, withFaults())
				c, token := impersonating(t, a)
				a.users.failing.Store(true)
				r := postToken(c, a.plugin.LogoutURL(), token)
				a.users.failing.Store(false)
				want5xx(t, r, errUsersDown)
				wantImpersonating(t, c)
				if r := postToken(c, a.plugin.LogoutURL(), c.page().Token); r.status != http.StatusSeeOther {
					t.Fatalf("return once the directory is back: status %d: %s", r.status, r.body)
				}
				wantAdmin(t, c)
			})
		})
	}
}

func TestFaultSessionStore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// serverSideOnly: the case applies to server-side stores only.
		serverSideOnly bool
		// fail turns the fault on; the request runs while it is on.
		fail func(s *faultStore)
		// returning: the request is the return to the actor, else the
		// switch.
		returning bool
		// completes: the return goes through all the same, because the
		// impersonation has ended in the Store and the old session that
		// could not be deleted is worthless.
		completes bool
	}{
		{"switch, every save fails", false, func(s *faultStore) { s.failSaves.Store(true) }, false, false},
		{"switch, deleting the old ID fails", true, func(s *faultStore) { s.failDeletes.Store(true) }, false, false},
		{"switch, loading fails", false, func(s *faultStore) { s.failLoads.Store(true) }, false, false},
		{"return, every save fails", false, func(s *faultStore) { s.failSaves.Store(true) }, true, false},
		{"return, deleting the old ID fails", true, func(s *faultStore) { s.failDeletes.Store(true) }, true, true},
		{"return, loading fails", false, func(s *faultStore) { s.failLoads.Store(true) }, true, false},
	}
	for _, st := range sessionStores {
		t.Run("store="+st.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				if tc.serverSideOnly && !st.serverSide {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					a := newApp(t, st, withFaults())
					heal := func() {
						a.faults.failLoads.Store(false)
						a.faults.failSaves.Store(false)
						a.faults.failDeletes.Store(false)
					}
					if !tc.returning {
						c, token := signedInAdmin(t, a)
						tc.fail(a.faults)
						r := postToken(c, a.plugin.LoginAsURL("alice"), token)
						heal()
						want5xx(t, r, errSessionsDown)
						wantAdmin(t, c)
						wantNoOrphans(t, a.faults)
						if got := a.audit.summary(); slices.Contains(got, "start/") && !slices.Contains(got, "end/failed") {
							t.Errorf("audit trail %v: a start without its failed end", got)
						}
						return
					}
					c, token := impersonating(t, a)
					copied := c.cookies()
					tc.fail(a.faults)
					r := postToken(c, a.plugin.LogoutURL(), token)
					heal()
					if tc.completes {
						if r.status != http.StatusSeeOther {
							t.Fatalf("return: status %d, want 303: %s", r.status, r.body)
						}
						wantAdmin(t, c)
						if st := a.clientWith(copied).page(); st.user() != "" || st.Impersonated {
							t.Fatalf("the impersonated session that could not be deleted = %+v; want it refused", st)
						}
						return
					}
					want5xx(t, r, errSessionsDown)
					wantImpersonating(t, c)
					wantNoOrphans(t, a.faults)
					if got := a.audit.summary(); slices.Contains(got, "end/logout") {
						t.Errorf("audit trail %v: an end recorded for a return that failed", got)
					}
					if r := postToken(c, a.plugin.LogoutURL(), c.page().Token); r.status != http.StatusSeeOther {
						t.Fatalf("return once the store is back: status %d: %s", r.status, r.body)
					}
					wantAdmin(t, c)
				})
			}
		})
	}
}

func TestFaultAuditAndHooks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		tweak    func(*loginas.Options)
		fail     func(a *testApp)
		internal error
	}{
		{"audit sink fails on start", func(*loginas.Options) {}, func(a *testApp) { a.audit.failStarts.Store(true) }, errAuditDown},
	}
	for _, st := range sessionStores {
		t.Run("store="+st.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					a := newApp(t, st, withFaults(), withOptions(tc.tweak))
					c, token := signedInAdmin(t, a)
					tc.fail(a)
					r := postToken(c, a.plugin.LoginAsURL("alice"), token)
					want5xx(t, r, tc.internal)
					wantAdmin(t, c)
					wantNoOrphans(t, a.faults)
					if got := a.audit.summary(); slices.Contains(got, "start/") {
						t.Errorf("audit trail %v: a start recorded for a switch that was not made", got)
					}
				})
			}
		})
	}
}
