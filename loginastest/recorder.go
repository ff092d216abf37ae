package loginastest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gin-loginas/loginas"
)

// Recorder is an audit sink that keeps every event in memory, for tests to
// assert on. Set Options.Audit to its Audit method. The zero value is ready
// to use, and a Recorder is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []loginas.Event
}

// Compile-time check that Audit fits Options.Audit.
var _ = loginas.Options{Audit: (&Recorder{}).Audit}

// Audit records e. It never fails, so the plugin never aborts a switch
// because of the Recorder.
func (r *Recorder) Audit(_ context.Context, e loginas.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Events returns a copy of the events recorded so far, oldest first.
func (r *Recorder) Events() []loginas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]loginas.Event(nil), r.events...)
}

// Last returns the most recent event, and false when there is none.
func (r *Recorder) Last() (loginas.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return loginas.Event{}, false
	}
	return r.events[len(r.events)-1], true
}

// Reset forgets every recorded event.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// Find returns the most recent event with the given action and cause, and
// false when there is none. An empty cause matches any cause, so
// Find(loginas.ActionStart, "") finds the latest start (starts have no
// cause) and Find(loginas.ActionDenied, "") the latest refusal of any kind.
func (r *Recorder) Find(action loginas.Action, cause loginas.Cause) (loginas.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		e := r.events[i]
		if e.Action == action && (cause == "" || e.Cause == cause) {
			return e, true
		}
	}
	return loginas.Event{}, false
}

// Require is Find for tests: it returns the most recent matching event, or
// fails t with the list of events that were recorded instead.
func (r *Recorder) Require(t TB, action loginas.Action, cause loginas.Cause) loginas.Event {
	t.Helper()
	e, ok := r.Find(action, cause)
	if !ok {
		want := string(action)
		if cause != "" {
			want += "/" + string(cause)
		}
		t.Fatalf("loginastest: no audit event %s; recorded:\n%s", want, r)
	}
	return e
}

// String lists the recorded events, one per line, for failure messages and
// t.Log.
func (r *Recorder) String() string {
	events := r.Events()
	if len(events) == 0 {
		return "  (no events)"
	}
	lines := make([]string, len(events))
	for i, e := range events {
		lines[i] = fmt.Sprintf("  %d. %s", i+1, formatEvent(e))
	}
	return strings.Join(lines, "\n")
}

// formatEvent renders an event on one line, leaving out empty fields and
// the time: `denied/not_permitted actor=3 (staff) target=2 (alice)
// detail="…" POST /admin/loginas/2`.
func formatEvent(e loginas.Event) string {
	var b strings.Builder
	b.WriteString(string(e.Action))
	if e.Cause != "" {
		b.WriteString("/" + string(e.Cause))
	}
	person := func(label, id, name string) {
		if id == "" && name == "" {
			return
		}
		fmt.Fprintf(&b, " %s=%s", label, id)
		if name != "" && name != id {
			fmt.Fprintf(&b, " (%s)", name)
		}
	}
	person("actor", e.ActorID, e.ActorName)
	person("target", e.TargetID, e.TargetName)
	if e.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", e.Reason)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " detail=%q", e.Detail)
	}
	if e.Method != "" || e.Path != "" {
		fmt.Fprintf(&b, " %s %s", e.Method, e.Path)
	}
	return b.String()
}
