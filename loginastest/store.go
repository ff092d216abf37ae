package loginastest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
)

// The Check functions test an implementation of the plugin's storage
// interfaces against the contract the plugin relies on, as subtests of t.
// The memory store and the sqlstore module run all three, the redisstore
// module (which keeps no history) CheckStore and CheckConsents; so can an
// app's own implementation:
//
//	func TestMyStore(t *testing.T) {
//		loginastest.CheckStore(t, func(t *testing.T) loginas.Store { return mystore.New(testDB(t)) })
//	}
//
// open is called once per subtest. The store it returns may already hold
// entries of other subtests (a shared database): every subtest uses IDs of
// its own. Times are compared to the millisecond.

// CheckStore tests a loginas.Store.
func CheckStore(t *testing.T, open func(t *testing.T) loginas.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)

	t.Run("StartThenEntry", func(t *testing.T) {
		s := open(t)
		e := newEntry(now)
		mustStart(t, s, e)
		got, err := s.Entry(ctx, e.ID)
		if err != nil {
			t.Fatalf("Entry(%s): %v", e.ID, err)
		}
		wantEntry(t, "Entry after Start", got, e)
	})

	t.Run("UnknownIsErrNoEntry", func(t *testing.T) {
		s := open(t)
		_, err := s.Entry(ctx, randomID())
		if !errors.Is(err, loginas.ErrNoEntry) {
			t.Fatalf("Entry of an unknown ID: err = %v, want loginas.ErrNoEntry", err)
		}
		ended, err := s.End(ctx, loginas.Selector{ID: randomID()}, loginas.CauseLogout, now)
		if err != nil || len(ended) != 0 {
			t.Fatalf("End of an unknown ID = %v, %v; want nothing and no error", ended, err)
		}
	})

	t.Run("EndByIDOnce", func(t *testing.T) {
		s := open(t)
		e := newEntry(now)
		mustStart(t, s, e)
		at := now.Add(time.Minute)
		ended := mustEnd(t, s, loginas.Selector{ID: e.ID}, loginas.CauseLogout, at)
		want := e
		want.Ended, want.Cause = at, loginas.CauseLogout
		if len(ended) != 1 {
			t.Fatalf("End by ID returned %d entries, want 1", len(ended))
		}
		wantEntry(t, "End by ID", ended[0], want)
		got, err := s.Entry(ctx, e.ID)
		if err != nil {
			t.Fatalf("Entry after End: %v", err)
		}
		wantEntry(t, "Entry after End", got, want)
		if again := mustEnd(t, s, loginas.Selector{ID: e.ID}, loginas.CauseRevoked, at.Add(time.Minute)); len(again) != 0 {
			t.Fatalf("a second End returned %+v, want nothing", again)
		}
		if got, _ := s.Entry(ctx, e.ID); got.Cause != loginas.CauseLogout || !sameTime(got.Ended, at) {
			t.Fatalf("a second End changed the entry: %+v", got)
		}
	})

	t.Run("EndByIDAfterTheDeadline", func(t *testing.T) {
		s := open(t)
		e := newEntry(now.Add(-2 * time.Hour))
		e.Deadline = now.Add(-30 * time.Second)
		mustStart(t, s, e)
		if ended := mustEnd(t, s, loginas.Selector{ID: e.ID}, loginas.CauseExpired, now); len(ended) != 1 {
			t.Fatalf("End by ID of an entry past its deadline returned %d entries, want 1", len(ended))
		}
	})

	for _, c := range []struct {
		name  string
		sel   func(e loginas.Entry) loginas.Selector
		other func(e loginas.Entry) loginas.Entry
	}{
		{"EndByActor", func(e loginas.Entry) loginas.Selector { return loginas.Selector{ActorID: e.ActorID} },
			func(e loginas.Entry) loginas.Entry { e.ActorID = "other-" + randomID(); return e }},
		{"EndByTarget", func(e loginas.Entry) loginas.Selector { return loginas.Selector{TargetID: e.TargetID} },
			func(e loginas.Entry) loginas.Entry { e.TargetID = "other-" + randomID(); return e }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			first := newEntry(now)
			second := newEntry(now.Add(time.Second))
			second.ActorID, second.TargetID = first.ActorID, first.TargetID
			expired := newEntry(now.Add(-3 * time.Hour))
			expired.ActorID, expired.TargetID = first.ActorID, first.TargetID
			expired.Deadline = now.Add(-time.Hour)
			done := newEntry(now)
			done.ActorID, done.TargetID = first.ActorID, first.TargetID
			// Another impersonation that shares first's other user.
			other := c.other(first)
			other.ID = randomID()
			for _, e := range []loginas.Entry{first, second, expired, done, other} {
				mustStart(t, s, e)
			}
			mustEnd(t, s, loginas.Selector{ID: done.ID}, loginas.CauseLogout, now)
			at := now.Add(time.Minute)
			ended := mustEnd(t, s, c.sel(first), loginas.CauseEnded, at)
			if ids := idsOf(ended); !sameIDs(ids, []string{first.ID, second.ID}) {
				t.Fatalf("%s ended %v, want the two live entries %v", c.name, ids, []string{first.ID, second.ID})
			}
			for _, e := range ended {
				if e.Cause != loginas.CauseEnded || !sameTime(e.Ended, at) {
					t.Errorf("%s returned %+v, want cause %q at %s", c.name, e, loginas.CauseEnded, at)
				}
			}
			if got, err := s.Entry(ctx, done.ID); err != nil || got.Cause != loginas.CauseLogout {
				t.Errorf("the entry that had ended is now %+v, %v; want it left as it was", got, err)
			}
			if got, err := s.Entry(ctx, other.ID); err != nil || !got.Ended.IsZero() {
				t.Errorf("another user's entry is now %+v, %v; want it live", got, err)
			}
		})
	}

	t.Run("EndRace", func(t *testing.T) {
		s := open(t)
		e := newEntry(now)
		mustStart(t, s, e)
		returned := race(t, "End", func(i int) (int, error) {
			var ended []loginas.Entry
			var err error
			if i%2 == 0 {
				ended, err = s.End(ctx, loginas.Selector{ID: e.ID}, loginas.CauseLogout, now)
			} else {
				ended, err = s.End(ctx, loginas.Selector{ActorID: e.ActorID}, loginas.CauseEnded, now)
			}
			return len(ended), err
		})
		if returned != 1 {
			t.Fatalf("%d concurrent Ends of one entry returned it %d times, want exactly once", racers, returned)
		}
	})

	t.Run("Live", func(t *testing.T) {
		s := open(t)
		target := "target-" + randomID()
		var mine []loginas.Entry
		for i := range 4 {
			e := newEntry(now.Add(time.Duration(i) * time.Second))
			e.TargetID = target
			mine = append(mine, e)
			mustStart(t, s, e)
		}
		expired := newEntry(now.Add(-2 * time.Hour))
		expired.TargetID, expired.Deadline = target, now.Add(-time.Hour)
		mustStart(t, s, expired)
		mustEnd(t, s, loginas.Selector{ID: mine[1].ID}, loginas.CauseLogout, now)
		elsewhere := newEntry(now)
		mustStart(t, s, elsewhere)

		live, err := s.Live(ctx, target, now.Add(2*time.Second), 10)
		if err != nil {
			t.Fatalf("Live: %v", err)
		}
		if got, want := idsOf(live), []string{mine[3].ID, mine[2].ID, mine[0].ID}; !slices.Equal(got, want) {
			t.Fatalf("Live(target) = %v, want the live ones newest first %v", got, want)
		}
		wantEntry(t, "Live entry", live[0], mine[3])
		if live, _ := s.Live(ctx, target, now, 2); len(live) != 2 || live[0].ID != mine[3].ID {
			t.Fatalf("Live(target, limit 2) = %v, want the two newest", idsOf(live))
		}
		all, err := s.Live(ctx, "", now.Add(2*time.Second), 100000)
		if err != nil {
			t.Fatalf("Live of every target: %v", err)
		}
		ids := idsOf(all)
		for _, e := range []loginas.Entry{mine[3], mine[2], mine[0], elsewhere} {
			if !slices.Contains(ids, e.ID) {
				t.Errorf("Live(\"\") lacks the live entry %s", e.ID)
			}
		}
		for _, e := range []loginas.Entry{mine[1], expired} {
			if slices.Contains(ids, e.ID) {
				t.Errorf("Live(\"\") holds %s, which is not live", e.ID)
			}
		}
		if !slices.IsSortedFunc(all, func(a, b loginas.Entry) int { return b.Started.Compare(a.Started) }) {
			t.Errorf("Live(\"\") is not newest first")
		}
	})

	t.Run("ConcurrentUse", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 8 {
			wg.Go(func() {
				for range 8 {
					e := newEntry(now)
					if err := s.Start(ctx, e); err != nil {
						errs <- err
						return
					}
					if _, err := s.Entry(ctx, e.ID); err != nil {
						errs <- err
						return
					}
					if _, err := s.End(ctx, loginas.Selector{ID: e.ID}, loginas.CauseLogout, now); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Start, Entry and End: %v", err)
		}
	})
}

// CheckHistory tests a loginas.History. When the History is also a
// loginas.Store, it also checks that Start and End alone are recorded, as
// the plugin then does not call Record.
func CheckHistory(t *testing.T, open func(t *testing.T) loginas.History) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)

	t.Run("RecordedNewestFirst", func(t *testing.T) {
		h := open(t)
		target := "target-" + randomID()
		var entries []loginas.Entry
		for i := range 4 {
			e := newEntry(now.Add(time.Duration(i) * time.Minute))
			e.TargetID = target
			entries = append(entries, e)
			mustRecord(t, h, e)
		}
		ended := entries[1]
		ended.Ended, ended.Cause = now.Add(90*time.Second), loginas.CauseLogout
		mustRecord(t, h, ended)
		other := newEntry(now)
		mustRecord(t, h, other)

		got, err := h.History(ctx, target, time.Time{}, 10)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if ids, want := idsOf(got), []string{entries[3].ID, entries[2].ID, entries[1].ID, entries[0].ID}; !slices.Equal(ids, want) {
			t.Fatalf("History = %v, want %v", ids, want)
		}
		wantEntry(t, "History entry that ended", got[2], ended)
		wantEntry(t, "History entry that is live", got[0], entries[3])
		page, err := h.History(ctx, target, entries[2].Started, 1)
		if err != nil || len(page) != 1 || page[0].ID != entries[1].ID {
			t.Fatalf("History(before the third, limit 1) = %v, %v; want the second", idsOf(page), err)
		}
	})

	t.Run("NoticesOnce", func(t *testing.T) {
		h := open(t)
		target := "target-" + randomID()
		live, done, failed, later := newEntry(now), newEntry(now), newEntry(now), newEntry(now.Add(time.Second))
		for _, e := range []*loginas.Entry{&live, &done, &failed, &later} {
			e.TargetID = target
			mustRecord(t, h, *e)
		}
		done.Ended, done.Cause = now.Add(time.Minute), loginas.CauseLogout
		failed.Ended, failed.Cause = now, loginas.CauseFailed
		mustRecord(t, h, done)
		mustRecord(t, h, failed)
		got := mustTake(t, h, target)
		if ids := idsOf(got); !slices.Equal(ids, []string{done.ID}) {
			t.Fatalf("TakeNotices = %v, want only the one that ended %v", ids, []string{done.ID})
		}
		wantEntry(t, "notice", got[0], done)
		if again := mustTake(t, h, target); len(again) != 0 {
			t.Fatalf("a second TakeNotices = %v, want nothing", idsOf(again))
		}
		later.Ended, later.Cause = now.Add(2*time.Minute), loginas.CauseExpired
		mustRecord(t, h, later)
		if got := mustTake(t, h, target); !slices.Equal(idsOf(got), []string{later.ID}) {
			t.Fatalf("TakeNotices after another end = %v, want %v", idsOf(got), []string{later.ID})
		}
	})

	t.Run("NoticesNewestFirst", func(t *testing.T) {
		h := open(t)
		target := "target-" + randomID()
		var entries []loginas.Entry
		for i := range 3 {
			e := newEntry(now.Add(time.Duration(i) * time.Minute))
			e.TargetID = target
			mustRecord(t, h, e)
			entries = append(entries, e)
		}
		// They end in another order than they started.
		for i, at := range []time.Duration{5, 3, 4} {
			entries[i].Ended, entries[i].Cause = now.Add(at*time.Minute), loginas.CauseLogout
			mustRecord(t, h, entries[i])
		}
		got := mustTake(t, h, target)
		if ids, want := idsOf(got), []string{entries[2].ID, entries[1].ID, entries[0].ID}; !slices.Equal(ids, want) {
			t.Fatalf("TakeNotices = %v, want the newest first %v", ids, want)
		}
	})

	t.Run("NoticesRace", func(t *testing.T) {
		h := open(t)
		target := "target-" + randomID()
		e := newEntry(now)
		e.TargetID = target
		mustRecord(t, h, e)
		e.Ended, e.Cause = now, loginas.CauseLogout
		mustRecord(t, h, e)
		returned := race(t, "TakeNotices", func(int) (int, error) {
			got, err := h.TakeNotices(ctx, target)
			return len(got), err
		})
		if returned != 1 {
			t.Fatalf("%d concurrent TakeNotices returned one notice %d times, want exactly once", racers, returned)
		}
	})

	t.Run("StoreOpsAreRecorded", func(t *testing.T) {
		h := open(t)
		s, ok := h.(loginas.Store)
		if !ok {
			t.Skip("this History is not a Store")
		}
		e := newEntry(now)
		mustStart(t, s, e)
		if got, err := h.History(ctx, e.TargetID, time.Time{}, 10); err != nil || !slices.Equal(idsOf(got), []string{e.ID}) {
			t.Fatalf("History after Start = %v, %v; want %s", idsOf(got), err, e.ID)
		}
		mustEnd(t, s, loginas.Selector{ID: e.ID}, loginas.CauseExpired, now.Add(time.Hour))
		if got := mustTake(t, h, e.TargetID); len(got) != 1 || got[0].Cause != loginas.CauseExpired {
			t.Fatalf("TakeNotices after End = %+v, want the ended entry", got)
		}
	})
}

// CheckConsents tests a loginas.Consents.
func CheckConsents(t *testing.T, open func(t *testing.T) loginas.Consents) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)

	t.Run("GrantChangeWithdraw", func(t *testing.T) {
		c := open(t)
		target, other := "target-"+randomID(), "target-"+randomID()
		if until, err := c.Consent(ctx, target); err != nil || !until.IsZero() {
			t.Fatalf("Consent without a grant = %s, %v; want the zero time", until, err)
		}
		for _, until := range []time.Time{now.Add(time.Hour), now.Add(7 * 24 * time.Hour), now.Add(time.Minute)} {
			if err := c.SetConsent(ctx, target, until); err != nil {
				t.Fatalf("SetConsent: %v", err)
			}
			if got, err := c.Consent(ctx, target); err != nil || !sameTime(got, until) {
				t.Fatalf("Consent after a grant until %s = %s, %v", until, got, err)
			}
		}
		if got, _ := c.Consent(ctx, other); !got.IsZero() {
			t.Fatalf("another user's Consent = %s, want none", got)
		}
		if err := c.SetConsent(ctx, target, time.Time{}); err != nil {
			t.Fatalf("SetConsent(zero): %v", err)
		}
		if got, err := c.Consent(ctx, target); err != nil || !got.IsZero() {
			t.Fatalf("Consent after withdrawing = %s, %v; want the zero time", got, err)
		}
	})
}

// racers is how many goroutines race for one entry.
const racers = 8

// race runs f on racers goroutines at once and returns the sum of what they
// returned; an error fails t.
func race(t *testing.T, what string, f func(i int) (int, error)) int {
	t.Helper()
	var wg sync.WaitGroup
	counts := make([]int, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() { counts[i], errs[i] = f(i) })
	}
	wg.Wait()
	total := 0
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("%s: %v", what, errs[i])
		}
		total += counts[i]
	}
	return total
}

func newEntry(started time.Time) loginas.Entry {
	id := randomID()
	return loginas.Entry{
		ID:         id,
		ActorID:    "actor-" + id[:8],
		ActorName:  "Actor Ünïcode «" + id[:4] + "»",
		TargetID:   "target-" + id[:8],
		TargetName: "Target " + id[:4],
		Reason:     "ticket 42\nsecond line",
		Started:    started,
		Deadline:   started.Add(time.Hour),
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func mustStart(t *testing.T, s loginas.Store, e loginas.Entry) {
	t.Helper()
	if err := s.Start(context.Background(), e); err != nil {
		t.Fatalf("Start(%s): %v", e.ID, err)
	}
}

func mustEnd(t *testing.T, s loginas.Store, sel loginas.Selector, cause loginas.Cause, at time.Time) []loginas.Entry {
	t.Helper()
	ended, err := s.End(context.Background(), sel, cause, at)
	if err != nil {
		t.Fatalf("End(%+v): %v", sel, err)
	}
	return ended
}

func mustRecord(t *testing.T, h loginas.History, e loginas.Entry) {
	t.Helper()
	if err := h.Record(context.Background(), e); err != nil {
		t.Fatalf("Record(%s): %v", e.ID, err)
	}
}

func mustTake(t *testing.T, h loginas.History, target string) []loginas.Entry {
	t.Helper()
	got, err := h.TakeNotices(context.Background(), target)
	if err != nil {
		t.Fatalf("TakeNotices: %v", err)
	}
	return got
}

func idsOf(entries []loginas.Entry) []string {
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

func sameIDs(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func wantEntry(t *testing.T, what string, got, want loginas.Entry) {
	t.Helper()
	if got.ID != want.ID || got.ActorID != want.ActorID || got.ActorName != want.ActorName ||
		got.TargetID != want.TargetID || got.TargetName != want.TargetName || got.Reason != want.Reason ||
		got.Cause != want.Cause || !sameTime(got.Started, want.Started) || !sameTime(got.Deadline, want.Deadline) ||
		!sameTime(got.Ended, want.Ended) {
		t.Fatalf("%s = %+v\nwant %+v", what, got, want)
	}
}
