package redisstore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// shortTimeouts makes a client give up quickly when Redis is down.
func shortTimeouts(o *redis.Options) {
	o.DialTimeout = 200 * time.Millisecond
	o.ReadTimeout = 200 * time.Millisecond
	o.WriteTimeout = 200 * time.Millisecond
	o.PoolTimeout = 200 * time.Millisecond
	o.DialerRetries = 1
	o.MaxRetries = 1
}

// TestRedisDown stops the server between calls: every method then fails
// quickly with an error (never ErrNoEntry, never a zero consent), none of
// them leaves anything half-done, and once the server is back, after an
// orderly stop and after a crash, the same client and Store work again
// with the data as it was.
//
// It does not run in parallel with the other tests, which start servers of
// their own: one could take the port while this server is stopped.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv, shortTimeouts)
	s := New(c, Options{})
	now := time.Now().Truncate(time.Millisecond)
	live, done := entry(now), entry(now.Add(time.Second))
	live.TargetID = done.TargetID
	mustStart(t, s, live)
	mustStart(t, s, done)
	if _, err := s.End(ctx, loginas.Selector{ID: done.ID}, loginas.CauseLogout, now); err != nil {
		t.Fatal(err)
	}
	done = mustEntry(t, s, done.ID)
	until := now.Add(time.Hour)
	if err := s.SetConsent(ctx, live.TargetID, until); err != nil {
		t.Fatal(err)
	}
	fresh := entry(now)

	// intact checks that the data is as before the outage, and that what
	// was tried during the outage left no trace.
	intact := func(when string) {
		t.Helper()
		if got := mustEntry(t, s, live.ID); !sameEntry(got, live) {
			t.Errorf("%s: the live entry is %+v, want %+v", when, got, live)
		}
		if got := mustEntry(t, s, done.ID); !sameEntry(got, done) {
			t.Errorf("%s: the ended entry is %+v, want %+v", when, got, done)
		}
		if _, err := s.Entry(ctx, fresh.ID); !errors.Is(err, loginas.ErrNoEntry) {
			t.Errorf("%s: the entry started during the outage: err = %v, want ErrNoEntry", when, err)
		}
		if got, err := s.Live(ctx, live.TargetID, now, 10); err != nil || len(got) != 1 || got[0].ID != live.ID {
			t.Errorf("%s: Live = %v, %v; want the live entry", when, ids(got), err)
		}
		if got, err := s.Consent(ctx, live.TargetID); err != nil || !got.Equal(until) {
			t.Errorf("%s: Consent = %s, %v; want %s", when, got, err, until)
		}
		if got, err := s.Consent(ctx, fresh.TargetID); err != nil || !got.IsZero() {
			t.Errorf("%s: the consent granted during the outage = %s, %v; want none", when, got, err)
		}
	}

	srv.Stop(t)
	for _, call := range []struct {
		name string
		run  func() error
	}{
		{"Start", func() error { return s.Start(ctx, fresh) }},
		{"Entry", func() error { _, err := s.Entry(ctx, live.ID); return err }},
		{"End by ID", func() error {
			_, err := s.End(ctx, loginas.Selector{ID: live.ID}, loginas.CauseLogout, now)
			return err
		}},
		{"End by actor", func() error {
			_, err := s.End(ctx, loginas.Selector{ActorID: live.ActorID}, loginas.CauseEnded, now)
			return err
		}},
		{"End by target", func() error {
			_, err := s.End(ctx, loginas.Selector{TargetID: live.TargetID}, loginas.CauseEndedByTarget, now)
			return err
		}},
		{"Live", func() error { _, err := s.Live(ctx, "", now, 10); return err }},
		{"Live of a target", func() error { _, err := s.Live(ctx, live.TargetID, now, 10); return err }},
		{"SetConsent", func() error { return s.SetConsent(ctx, fresh.TargetID, until) }},
		{"SetConsent(zero)", func() error { return s.SetConsent(ctx, live.TargetID, time.Time{}) }},
		{"Consent", func() error { _, err := s.Consent(ctx, live.TargetID); return err }},
	} {
		start := time.Now()
		err := call.run()
		took := time.Since(start)
		switch {
		case err == nil:
			t.Errorf("%s with Redis down succeeded", call.name)
		case errors.Is(err, loginas.ErrNoEntry):
			t.Errorf("%s with Redis down: err = %v, which says there is no entry", call.name, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "):
			t.Errorf("%s with Redis down: err = %q, want it to start with \"redisstore: \"", call.name, err)
		case took > time.Second:
			t.Errorf("%s with Redis down took %s, want it to give up quickly", call.name, took)
		default:
			t.Logf("%s with Redis down: %v (%s)", call.name, err, took.Round(time.Millisecond))
		}
	}

	srv.Start(t)
	recovered(t, s)
	intact("after a restart")
	srv.Kill(t)
	srv.Start(t)
	recovered(t, s)
	intact("after a crash")

	// And it works as before.
	mustStart(t, s, fresh)
	if ended, err := s.End(ctx, loginas.Selector{TargetID: live.TargetID}, loginas.CauseEndedByTarget, now); err != nil || len(ended) != 1 || ended[0].ID != live.ID {
		t.Errorf("End by target after the outage = %v, %v; want the live entry", ids(ended), err)
	}
}

// recovered waits until s answers again. After PoolSize failed dials the
// go-redis pool stops dialling and probes the server once a second, so the
// first calls after Redis is back may still fail for up to a second.
func recovered(t *testing.T, s *Store) {
	t.Helper()
	start := time.Now()
	for {
		_, err := s.Consent(ctx, "probe")
		if err == nil {
			t.Logf("the client answered again %s after the server", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the client still fails 5s after the server is back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTwoInstances races End by ID, by actor and by target, on two Stores
// with a client each (as two instances of an app), over the same entries:
// every entry is returned by exactly one call, both instances then read it
// as that call ended it, and it has left the live sets.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	stores := []*Store{New(newClient(t, srv), Options{}), New(newClient(t, srv), Options{})}
	c := newClient(t, srv)
	now := time.Now().Truncate(time.Millisecond)
	for round := range 20 {
		actor := "actor-" + rand.Text()
		targets := []string{"target-" + rand.Text(), "target-" + rand.Text()}
		var entries []loginas.Entry
		for i := range 6 {
			e := entry(now.Add(time.Duration(i) * time.Millisecond))
			e.ActorID, e.TargetID = actor, targets[i%2]
			mustStart(t, stores[i%2], e)
			entries = append(entries, e)
		}
		type call struct {
			s     *Store
			sel   loginas.Selector
			cause loginas.Cause
		}
		var calls []call
		for _, s := range stores {
			for _, e := range entries {
				calls = append(calls, call{s, loginas.Selector{ID: e.ID}, loginas.CauseLogout})
			}
			calls = append(calls, call{s, loginas.Selector{ActorID: actor}, loginas.CauseEnded})
			for _, target := range targets {
				calls = append(calls, call{s, loginas.Selector{TargetID: target}, loginas.CauseEndedByTarget})
			}
		}
		results := make([][]loginas.Entry, len(calls))
		errs := make([]error, len(calls))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, cl := range calls {
			wg.Go(func() {
				<-start
				results[i], errs[i] = cl.s.End(ctx, cl.sel, cl.cause, now.Add(time.Minute))
			})
		}
		close(start)
		wg.Wait()

		returned := map[string][]loginas.Entry{}
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("round %d: End(%+v): %v", round, calls[i].sel, errs[i])
			}
			for _, e := range r {
				if e.Cause != calls[i].cause {
					t.Errorf("round %d: End(%+v) returned %s with cause %q", round, calls[i].sel, e.ID, e.Cause)
				}
				returned[e.ID] = append(returned[e.ID], e)
			}
		}
		for _, e := range entries {
			got := returned[e.ID]
			if len(got) != 1 {
				t.Fatalf("round %d: entry %s was returned %d times, want exactly once", round, e.ID, len(got))
			}
			for _, s := range stores {
				if now := mustEntry(t, s, e.ID); !sameEntry(now, got[0]) {
					t.Errorf("round %d: an instance reads %+v, the End returned %+v", round, now, got[0])
				}
			}
			for _, set := range []string{stores[0].actorKey(actor), stores[0].targetKey(e.TargetID), stores[0].liveKey()} {
				if inSet(t, c, set, e.ID) {
					t.Errorf("round %d: ended entry %s is still in %s", round, e.ID, set)
				}
			}
		}
	}
}

// TestStartDuringEndAll races one instance starting impersonations of an
// actor against the other ending all of them: each entry ends exactly once
// or stays live, and a live one is in every live set, an ended one in none.
func TestStartDuringEndAll(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := New(newClient(t, srv), Options{}), New(newClient(t, srv), Options{})
	c := newClient(t, srv)
	now := time.Now().Truncate(time.Millisecond)
	actor := "actor-" + rand.Text()
	var entries []loginas.Entry
	for i := range 50 {
		e := entry(now)
		e.ActorID, e.TargetID = actor, fmt.Sprintf("target-%d-%s", i%3, actor)
		entries = append(entries, e)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, e := range entries {
			if err := b.Start(ctx, e); err != nil {
				t.Errorf("Start: %v", err)
				return
			}
		}
	})
	endedBy := map[string]int{}
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for range 20 {
				ended, err := a.End(ctx, loginas.Selector{ActorID: actor}, loginas.CauseEnded, now)
				if err != nil {
					t.Errorf("End: %v", err)
					return
				}
				mu.Lock()
				for _, e := range ended {
					endedBy[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, e := range entries {
		got := mustEntry(t, a, e.ID)
		sets := []string{a.actorKey(actor), a.targetKey(e.TargetID), a.liveKey()}
		switch n := endedBy[e.ID]; {
		case n > 1:
			t.Errorf("entry %s was returned %d times", e.ID, n)
		case n == 1 && got.Ended.IsZero(), n == 0 && !got.Ended.IsZero():
			t.Errorf("entry %s returned %d times is %+v", e.ID, n, got)
		}
		for _, set := range sets {
			if in := inSet(t, c, set, e.ID); in != got.Ended.IsZero() {
				t.Errorf("entry %s (ended %v) in %s: %v", e.ID, !got.Ended.IsZero(), set, in)
			}
		}
	}
}
