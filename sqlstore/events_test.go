package sqlstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
)

func testEvents(t *testing.T, b backend) {
	t.Run("RoundTrip", func(t *testing.T) { t.Parallel(); testEventRoundTrip(t, b.newStore(t)) })
	t.Run("Paging", func(t *testing.T) { t.Parallel(); testEventPaging(t, b.newStore(t)) })
	t.Run("UserFilter", func(t *testing.T) { t.Parallel(); testEventUser(t, b.newStore(t)) })
	t.Run("ActionFilter", func(t *testing.T) { t.Parallel(); testEventAction(t, b.newStore(t)) })
	t.Run("CountSince", func(t *testing.T) { t.Parallel(); testCountSince(t, b.newStore(t)) })
}

// testEventRoundTrip checks that every field of an Event comes back.
func testEventRoundTrip(t *testing.T, s *Store) {
	ctx := context.Background()
	zone := time.FixedZone("UTC-3", -3*3600)
	full := loginas.Event{
		Action: loginas.ActionStart, Cause: loginas.CauseNested, ImpersonationID: "imp-1",
		ActorID: "a1", ActorName: "Ädmin «one»", TargetID: "t1", TargetName: "Target\tOne",
		Reason: "ticket 42\nsecond line", Detail: "detail ✓",
		Deadline: time.Date(2030, 1, 2, 3, 4, 5, 678901234, zone),
		Time:     time.Date(2030, 1, 2, 2, 4, 5, 123456789, zone),
		ClientIP: "2001:db8::1", UserAgent: "Mozilla/5.0 (X11)", Method: "POST", Path: "/loginas/7",
	}
	sparse := loginas.Event{Action: loginas.ActionDenied, Cause: loginas.CauseNotSignedIn, Time: time.Unix(1, 0)}
	for _, e := range []loginas.Event{full, sparse} {
		if err := s.Audit(ctx, e); err != nil {
			t.Fatalf("Audit: %v", err)
		}
	}
	got, err := s.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(got) != 2 || got[0].ID <= got[1].ID {
		t.Fatalf("Events = %+v, want two, newest (highest ID) first", got)
	}
	utc := func(e loginas.Event) loginas.Event {
		if !e.Deadline.IsZero() {
			e.Deadline = e.Deadline.Truncate(time.Microsecond).UTC()
		}
		e.Time = e.Time.Truncate(time.Microsecond).UTC()
		return e
	}
	if got[1].Event != utc(full) {
		t.Errorf("full event\n got %+v\nwant %+v", got[1].Event, utc(full))
	}
	if got[0].Event != utc(sparse) || !got[0].Deadline.IsZero() {
		t.Errorf("sparse event\n got %+v\nwant %+v", got[0].Event, utc(sparse))
	}
}

// testEventPaging walks the trail page by page with Before.
func testEventPaging(t *testing.T, s *Store) {
	ctx := context.Background()
	ids := audit(t, s, DefaultEventLimit+5, func(i int) loginas.Event {
		return loginas.Event{Action: loginas.ActionEnd, ActorID: "a", TargetID: "t", Time: time.Now()}
	})
	slices.Reverse(ids)
	if page, err := s.Events(ctx, EventQuery{}); err != nil || len(page) != DefaultEventLimit {
		t.Fatalf("Events with no limit = %d events, %v; want %d", len(page), err, DefaultEventLimit)
	}
	var walked []int64
	q := EventQuery{Limit: 10}
	for {
		page, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		walked = append(walked, eventIDs(page)...)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].ID
	}
	if !slices.Equal(walked, ids) {
		t.Fatalf("paging by Before walked %v\nwant %v", walked, ids)
	}
}

// testEventUser checks that a UserID keeps the events whose actor or target
// is the user, each once, newest first, page by page.
func testEventUser(t *testing.T, s *Store) {
	ctx := context.Background()
	kinds := []struct{ actor, target string }{{"u", "x"}, {"x", "u"}, {"u", "u"}, {"x", "y"}, {"", "u"}, {"y", ""}}
	ids := audit(t, s, 30, func(i int) loginas.Event {
		k := kinds[i%len(kinds)]
		return loginas.Event{Action: loginas.ActionStart, ActorID: k.actor, TargetID: k.target, Time: time.Now()}
	})
	var want []int64
	for i, id := range ids {
		if k := kinds[i%len(kinds)]; k.actor == "u" || k.target == "u" {
			want = append(want, id)
		}
	}
	slices.Reverse(want)
	var walked []int64
	q := EventQuery{UserID: "u", Limit: 4}
	for {
		page, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		for _, e := range page {
			if e.ActorID != "u" && e.TargetID != "u" {
				t.Errorf("Events(UserID u) returned %+v", e)
			}
		}
		walked = append(walked, eventIDs(page)...)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].ID
	}
	if !slices.Equal(walked, want) {
		t.Fatalf("Events(UserID u) walked %v\nwant %v", walked, want)
	}
	if page, err := s.Events(ctx, EventQuery{UserID: "nobody"}); err != nil || len(page) != 0 {
		t.Fatalf("Events(UserID nobody) = %v, %v; want none", page, err)
	}
}

// testEventAction checks the Action filter, alone and with a UserID.
func testEventAction(t *testing.T, s *Store) {
	ctx := context.Background()
	actions := []loginas.Action{loginas.ActionStart, loginas.ActionEnd, loginas.ActionDenied, loginas.ActionConsent}
	users := []string{"u", "v", "w"}
	ids := audit(t, s, 40, func(i int) loginas.Event {
		return loginas.Event{Action: actions[i%len(actions)], ActorID: users[i%len(users)], TargetID: "t", Time: time.Now()}
	})
	for _, c := range []EventQuery{
		{Action: loginas.ActionEnd, Limit: 3},
		{Action: loginas.ActionDenied, UserID: "v", Limit: 2},
		{Action: loginas.ActionStart, UserID: "t", Limit: 100},
	} {
		var want []int64
		for i, id := range ids {
			if actions[i%len(actions)] == c.Action && (c.UserID == "" || c.UserID == users[i%len(users)] || c.UserID == "t") {
				want = append(want, id)
			}
		}
		slices.Reverse(want)
		var walked []int64
		q := c
		for {
			page, err := s.Events(ctx, q)
			if err != nil {
				t.Fatalf("Events(%+v): %v", q, err)
			}
			walked = append(walked, eventIDs(page)...)
			if len(page) < q.Limit {
				break
			}
			q.Before = page[len(page)-1].ID
		}
		if !slices.Equal(walked, want) {
			t.Errorf("Events(%+v) walked %v\nwant %v", c, walked, want)
		}
	}
}

// testCountSince counts the events of one action in a time window.
func testCountSince(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now()
	audit(t, s, 20, func(i int) loginas.Event {
		action := loginas.ActionStart
		if i%4 == 3 {
			action = loginas.ActionEnd
		}
		return loginas.Event{Action: action, Time: now.Add(-time.Duration(i) * time.Hour)}
	})
	for _, c := range []struct {
		action loginas.Action
		since  time.Time
		want   int
	}{
		{loginas.ActionStart, now.Add(-24 * time.Hour), 15},
		{loginas.ActionStart, now.Add(-5 * time.Hour), 5}, // 0, 1, 2, 4, 5
		{loginas.ActionStart, now, 1},
		{loginas.ActionEnd, now.Add(-8 * time.Hour), 2},
		{loginas.ActionDenied, time.Time{}, 0},
	} {
		if got, err := s.CountSince(ctx, c.action, c.since); err != nil || got != c.want {
			t.Errorf("CountSince(%s, %s) = %d, %v; want %d", c.action, c.since, got, err, c.want)
		}
	}
	if _, err := s.CountSince(ctx, "", now); err == nil {
		t.Errorf("CountSince with no action: no error")
	}
}

// audit appends n events made by make and returns their IDs, oldest first.
func audit(t *testing.T, s *Store, n int, make func(i int) loginas.Event) []int64 {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if err := s.Audit(ctx, make(i)); err != nil {
			t.Fatalf("Audit: %v", err)
		}
	}
	all, err := s.Events(ctx, EventQuery{Limit: MaxEventLimit})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(all) != n {
		t.Fatalf("%d events stored, want %d", len(all), n)
	}
	ids := eventIDs(all)
	slices.Reverse(ids)
	return ids
}

func eventIDs(events []StoredEvent) []int64 {
	ids := make([]int64, 0, len(events))
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	return ids
}
