package loginas_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// statusTally counts response statuses from many goroutines.
type statusTally struct {
	mu     sync.Mutex
	counts map[int]int
}

func (s *statusTally) add(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[int]int{}
	}
	s.counts[status]++
}

func (s *statusTally) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(func(yield func(int) bool) {
		for k := range s.counts {
			if !yield(k) {
				return
			}
		}
	})
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf(" %d×%d", k, s.counts[k])
	}
	return out
}

// wantNo5xx fails the test if any status was a 5xx or a transport error
// (0), or anything but 2xx, 303 and 4xx.
func (s *statusTally) wantNo5xx(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for status, n := range s.counts {
		ok := (status >= 200 && status < 300) || status == http.StatusSeeOther || (status >= 400 && status < 500)
		if !ok {
			t.Errorf("%d responses with status %d", n, status)
		}
	}
}

// stateProblem reports what is wrong with a state seen by the client of
// actor, or "" when it is one of the states a session may be in: signed
// out, the actor as themselves, or one of targets with a valid record that
// names the actor.
func stateProblem(st state, actor string, targets []string) string {
	switch user := st.user(); {
	case user == "":
		if st.HasRecord || st.Impersonated {
			return "signed out, yet a record or the impersonation flag remains"
		}
	case user == actor:
		if st.HasRecord || st.Impersonated || st.Current != nil {
			return "the actor as themselves, yet with a record or the impersonation flag"
		}
	case slices.Contains(targets, user):
		if !st.HasRecord {
			return "a target session without its record"
		}
		if !st.Impersonated || st.Current == nil || st.Current.ActorID != actor || st.Current.TargetID != user {
			return "a target session whose record was not accepted or names someone else"
		}
	default:
		return "a session of a user nobody switched to"
	}
	return ""
}

// wantCleanTrail fails the test if the plugin ever had to throw away a
// session it found broken: with consistent sessions, no impersonation ends
// as revoked or failed, and one ends as invalid only when it had already
// ended by a return (a request that still carried its cookie).
func wantCleanTrail(t *testing.T, a *auditLog) {
	t.Helper()
	events := a.Events()
	returned := map[string]bool{}
	for _, e := range events {
		if e.Action == loginas.ActionEnd && e.Cause == loginas.CauseLogout {
			returned[e.ImpersonationID] = true
		}
	}
	for _, e := range events {
		if e.Action != loginas.ActionEnd {
			continue
		}
		switch {
		case e.Cause == loginas.CauseInvalid && e.ImpersonationID != "" && returned[e.ImpersonationID]:
			// A replay of an impersonation that was returned from.
		case e.Cause == loginas.CauseInvalid || e.Cause == loginas.CauseRevoked || e.Cause == loginas.CauseFailed:
			t.Errorf("audit trail holds an end of cause %s (%s; actor %q, target %q): a session was found broken", e.Cause, e.Detail, e.ActorID, e.TargetID)
		}
	}
}

// sameOrigin are the headers of a browser's form post on the app's page.
func sameOrigin(a *testApp) http.Header {
	return header("Origin", a.origin(), "Sec-Fetch-Site", "same-origin")
}

// TestConcurrentOneSession runs switches, returns and reads in parallel on
// one browser session (one cookie jar), so that requests carry cookies that
// other requests are replacing. Whatever the interleaving, no answer is a
// 5xx, and every state observed is one a session may legitimately be in.
func TestConcurrentOneSession(t *testing.T) {
	t.Parallel()
	const goroutines, rounds = 8, 40
	targets := []string{"alice", "bob"}
	for _, st := range sessionStores {
		// With the plugin's CSRF token most concurrent posts carry a token
		// that another request has just replaced, and are refused; with
		// the app's own CSRF protection (ExternalCSRF) every post goes
		// through to the switch logic.
		for _, csrf := range []string{"plugin", "external"} {
			t.Run("store="+st.name+"/csrf="+csrf, func(t *testing.T) {
				t.Parallel()
				a := newApp(t, st, withOptions(func(o *loginas.Options) { o.ExternalCSRF = csrf == "external" }))
				browser := sameOrigin(a)
				c := a.signedIn("admin")
				var tally statusTally
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(g), 7))
						for range rounds {
							page, status := c.tryPage()
							tally.add(status)
							if status == http.StatusOK {
								if problem := stateProblem(page.state, "admin", targets); problem != "" {
									t.Errorf("%s: %+v", problem, page)
								}
							}
							switch rng.IntN(3) {
							case 0:
								id := targets[rng.IntN(len(targets))]
								tally.add(c.post(a.plugin.LoginAsURL(id), tokenForm(page.Token), browser).status)
							case 1:
								tally.add(c.post(a.plugin.LogoutURL(), tokenForm(page.Token), browser).status)
							case 2:
								// A plain logout that raced a switch signs the
								// session out; sign in again, as a person would.
								if page.user() == "" && status == http.StatusOK {
									tally.add(c.post("/test/login", url.Values{"id": {"admin"}, "fresh": {"1"}}, browser).status)
								}
							}
						}
					})
				}
				wg.Wait()
				tally.wantNo5xx(t)
				page, status := c.tryPage()
				if status != http.StatusOK {
					t.Fatalf("final GET /test/page: status %d", status)
				}
				if problem := stateProblem(page.state, "admin", targets); problem != "" {
					t.Errorf("final state: %s: %+v", problem, page)
				}
				wantCleanTrail(t, a.audit)
				t.Logf("statuses:%s", tally.String())
			})
		}
	}
}

// TestConcurrentManySessions runs full cycles (switch, read, return, read)
// on many sessions at once, two actors sharing the user directory and the
// store. Each session is used by one goroutine, so every step must succeed.
func TestConcurrentManySessions(t *testing.T) {
	t.Parallel()
	const clients, cycles, extraUsers = 12, 15, 20
	for _, st := range sessionStores {
		t.Run("store="+st.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, st)
			browser := sameOrigin(a)
			targets := []string{"alice", "bob"}
			for i := range extraUsers {
				id := strconv.Itoa(7 + i)
				a.users.update(id, func(u *loginas.User) { *u = loginas.User{ID: id, Name: "user" + id, Active: true} })
				targets = append(targets, id)
			}
			var tally statusTally
			var wg sync.WaitGroup
			for n := range clients {
				wg.Go(func() {
					actor := []string{"admin", "root"}[n%2]
					c := a.client()
					tally.add(c.post("/test/login", url.Values{"id": {actor}}, browser).status)
					// withToken posts to path with a token from a fresh page.
					withToken := func(path string) int {
						page, _ := c.tryPage()
						return c.post(path, tokenForm(page.Token), browser).status
					}
					rng := rand.New(rand.NewPCG(uint64(n), 11))
					for range cycles {
						target := targets[rng.IntN(len(targets))]
						if status := withToken(a.plugin.LoginAsURL(target)); status != http.StatusSeeOther {
							t.Errorf("switch of %s to %s: status %d", actor, target, status)
							return
						}
						if page, _ := c.tryPage(); page.user() != target || stateProblem(page.state, actor, targets) != "" {
							t.Errorf("after the switch of %s to %s: %+v", actor, target, page)
							return
						}
						if status := withToken(a.plugin.LogoutURL()); status != http.StatusSeeOther {
							t.Errorf("return of %s from %s: status %d", actor, target, status)
							return
						}
						if page, _ := c.tryPage(); page.user() != actor || stateProblem(page.state, actor, targets) != "" {
							t.Errorf("after the return of %s from %s: %+v", actor, target, page)
							return
						}
					}
				})
			}
			wg.Wait()
			tally.wantNo5xx(t)
			wantCleanTrail(t, a.audit)
			if got, want := len(a.audit.matching(loginas.ActionStart, "")), clients*cycles; got != want {
				t.Errorf("%d starts audited, want %d", got, want)
			}
			if got, want := len(a.audit.matching(loginas.ActionEnd, loginas.CauseLogout)), clients*cycles; got != want {
				t.Errorf("%d returns audited, want %d", got, want)
			}
		})
	}
}

// TestConcurrentSaveDoesNotReviveOldSession holds an app request that
// saves the session (as any handler that records something in it does)
// while the same browser switches or returns in another request. On a
// server-side store the switch deletes the old session ID; the held request
// then saves its copy of the old session under that ID again, since the
// store has no compare-and-set. After a return, a copy of the impersonated
// cookie must not be an impersonation any more (its end is already
// audited). After a switch, the revived session may only be what the
// README documents: the actor's own, without a record, granting nothing.
func TestConcurrentSaveDoesNotReviveOldSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// impersonating: the held request and the change use the admin's
		// session as alice, else the admin's own.
		impersonating bool
		// change is the request made while the other one is held.
		path string
		// problem says what is wrong with the state of the old cookie
		// afterwards, or "".
		problem func(st state) string
	}{
		{
			name:          "return",
			impersonating: true,
			path:          "/admin/loginas/logout",
			problem: func(st state) string {
				if st.Impersonated || st.HasRecord || st.user() == "alice" {
					return "the impersonation ended by the return is alive again"
				}
				return ""
			},
		},
		{
			name: "switch",
			path: "/admin/loginas/alice",
			problem: func(st state) string {
				if (st.user() != "" && st.user() != "admin") || st.HasRecord || st.Impersonated {
					return "the session replaced by the switch came back as more than the actor's own"
				}
				return ""
			},
		},
	} {
		t.Run("store=memstore/"+tc.name, func(t *testing.T) {
			t.Parallel()
			loaded, release := make(chan struct{}), make(chan struct{})
			// In process: no server, the clients call the engine.
			a := buildApp(t, memStore, withRoutes(func(r *gin.Engine, _ *loginas.Plugin) {
				r.GET("/visit", func(c *gin.Context) {
					s := sessions.Default(c)
					close(loaded)
					<-release
					s.Set("last_visit", "/visit")
					if err := s.Save(); err != nil {
						c.AbortWithStatus(http.StatusInternalServerError)
						return
					}
					c.Status(http.StatusNoContent)
				})
			}))
			c := a.signedIn("admin")
			if tc.impersonating {
				c.mustSwitch("alice")
			}
			token, old := c.page().Token, c.cookies()
			held, visitor := make(chan int), a.clientWith(old)
			go func() { held <- visitor.get("/visit").status }()
			<-loaded
			r := a.clientWith(old).post(tc.path, tokenForm(token))
			close(release)
			if status := <-held; status != http.StatusNoContent {
				t.Fatalf("held request: status %d", status)
			}
			if r.status != http.StatusSeeOther {
				t.Fatalf("POST %s: status %d: %s", tc.path, r.status, r.body)
			}
			st := a.clientWith(old).state()
			if problem := tc.problem(st); problem != "" {
				t.Errorf("%s: the old cookie now gives %+v", problem, st)
			}
		})
	}
}
