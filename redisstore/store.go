// Package redisstore keeps the impersonations of the loginas plugin in
// Redis, where every instance of an app sees them: a loginas.Store and
// loginas.Consents for Options.Store. It keeps no history; pair it with a
// loginas.History such as the sqlstore module's for Options.History.
//
// Entries expire by themselves, Options.Grace after their deadline, and so
// do consents, at the end of the grant: nothing needs sweeping. Each End is
// one Lua script, atomic on the server, so of two instances racing to end
// one impersonation exactly one gets it back. The README describes the keys.
package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "loginas:"

// DefaultGrace is how long after its deadline an entry is kept when
// Options.Grace is not positive.
const DefaultGrace = time.Minute

// replayTTL is how long the list of what an End by actor or target ended is
// kept, for a client that retries the call.
const replayTTL = 5 * time.Minute

// Options configure a Store.
type Options struct {
	// Prefix starts every key the store writes. If empty, DefaultPrefix.
	// Stores with different prefixes on one server do not see each other's
	// entries. On Redis Cluster, give it a hash tag, such as "{loginas}:",
	// so that all the keys are in one slot, as the store's scripts need.
	Prefix string

	// Grace is how long after its deadline an entry is kept: a margin for
	// the clocks of the app's machines and Redis, and so that the first
	// request after the deadline still finds the entry and records the
	// expiry. If not positive, DefaultGrace. Keep it at 30 seconds or more:
	// loginastest.CheckStore expects an entry that long after its deadline.
	Grace time.Duration
}

// Store is a loginas.Store and loginas.Consents on Redis. Its methods are
// safe for concurrent use, and any number of Store values, in one process
// or many, may share one server.
type Store struct {
	c      redis.UniversalClient
	prefix string
	grace  time.Duration
}

var (
	_ loginas.Store    = (*Store)(nil)
	_ loginas.Consents = (*Store)(nil)
)

// New returns a Store on the server (or cluster) that client talks to.
// The client's timeouts and retries apply to every call.
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil {
		panic("redisstore: New with a nil client")
	}
	s := &Store{c: client, prefix: opts.Prefix, grace: opts.Grace}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.grace <= 0 {
		s.grace = DefaultGrace
	}
	return s
}

// entryFields are the fields of an entry's hash, in the order in which the
// store reads them and the scripts return them. The hash also holds
// end_token, which names the End call that ended it.
var entryFields = []string{"id", "actor_id", "actor_name", "target_id", "target_name", "reason", "started", "deadline", "ended", "cause"}

func (s *Store) entryKey(id string) string       { return s.prefix + "imp:" + id }
func (s *Store) actorKey(id string) string       { return s.prefix + "actor:" + id }
func (s *Store) targetKey(id string) string      { return s.prefix + "target:" + id }
func (s *Store) liveKey() string                 { return s.prefix + "live" }
func (s *Store) consentKey(target string) string { return s.prefix + "consent:" + target }

// trimBefore is the deadline before which members of the live sets are
// dropped: their entries have expired.
func (s *Store) trimBefore() string {
	return ms(time.Now().Add(-s.grace))
}

// Start records a new live impersonation: its hash expires Grace after its
// deadline. An entry whose deadline is more than Grace in the past is
// dropped at once. Starting the same entry again, as a client does when it
// retries a call whose reply it lost, changes nothing; starting another
// entry under an ID in use is an error.
func (s *Store) Start(ctx context.Context, e loginas.Entry) error {
	if e.ID == "" {
		return errors.New("redisstore: start: the entry has no ID")
	}
	res, err := startScript.Run(ctx, s.c, []string{s.entryKey(e.ID)},
		s.prefix, e.ID, e.ActorID, e.ActorName, e.TargetID, e.TargetName, e.Reason,
		ms(e.Started), ms(e.Deadline), ms(e.Deadline.Add(s.grace)),
		s.grace.Milliseconds(), s.trimBefore(),
	).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redisstore: start: %w", err)
	case res == 2:
		return errors.New("redisstore: start: another entry has this ID")
	}
	return nil
}

// Entry returns the entry with the given ID, or loginas.ErrNoEntry once it
// has expired or if there never was one. It is one HMGET.
func (s *Store) Entry(ctx context.Context, id string) (loginas.Entry, error) {
	vals, err := s.c.HMGet(ctx, s.entryKey(id), entryFields...).Result()
	if err != nil {
		return loginas.Entry{}, fmt.Errorf("redisstore: entry: %w", err)
	}
	e, ok, err := parseEntry(vals)
	switch {
	case err != nil:
		return loginas.Entry{}, fmt.Errorf("redisstore: entry: %w", err)
	case !ok:
		return loginas.Entry{}, loginas.ErrNoEntry
	}
	return e, nil
}

// End marks the entries that sel picks and that have not ended as ended at
// at with cause, and returns them. Each call is one script, atomic on the
// server: of racing calls, on any instance, exactly one returns an entry.
// A client's retry of a call whose reply it lost returns what the first
// attempt ended.
func (s *Store) End(ctx context.Context, sel loginas.Selector, cause loginas.Cause, at time.Time) ([]loginas.Entry, error) {
	return s.end(ctx, sel, cause, at, rand.Text())
}

// end is End with the token that names the call: a call with the token of
// an earlier one returns what the earlier one ended.
func (s *Store) end(ctx context.Context, sel loginas.Selector, cause loginas.Cause, at time.Time, token string) ([]loginas.Entry, error) {
	var (
		script *redis.Script
		key    string
		args   = []any{s.prefix, ms(at), string(cause), token}
	)
	switch {
	case sel.ID != "" && sel.ActorID == "" && sel.TargetID == "":
		script, key = endIDScript, s.entryKey(sel.ID)
	case sel.ActorID != "" && sel.ID == "" && sel.TargetID == "":
		script, key = endSetScript, s.actorKey(sel.ActorID)
	case sel.TargetID != "" && sel.ID == "" && sel.ActorID == "":
		script, key = endSetScript, s.targetKey(sel.TargetID)
	default:
		return nil, fmt.Errorf("redisstore: end: the selector %+v does not set exactly one field", sel)
	}
	if script == endSetScript {
		args = append(args, s.trimBefore(), replayTTL.Milliseconds())
	}
	res, err := script.Run(ctx, s.c, []string{key}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: end: %w", err)
	}
	var ended []loginas.Entry
	for _, r := range res {
		vals, _ := r.([]any)
		e, ok, err := parseEntry(vals)
		if err == nil && !ok {
			err = errors.New("no ID")
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore: end: malformed entry from the script: %w", err)
		}
		ended = append(ended, e)
	}
	return ended, nil
}

// Live returns the impersonations live at now, newest first, at most
// limit: those of targetID's account, or every one when targetID is "".
// It reads the IDs from the target's set (or the set of all live ones),
// then their hashes in one pipeline.
func (s *Store) Live(ctx context.Context, targetID string, now time.Time, limit int) ([]loginas.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	set := s.liveKey()
	if targetID != "" {
		set = s.targetKey(targetID)
	}
	var ids *redis.StringSliceCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, set, "-inf", "("+s.trimBefore())
		ids = p.ZRangeByScore(ctx, set, &redis.ZRangeBy{Min: "(" + ms(now), Max: "+inf"})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: live: %w", err)
	}
	if len(ids.Val()) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids.Val()))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids.Val() {
			cmds[i] = p.HMGet(ctx, s.entryKey(id), entryFields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: live: %w", err)
	}
	live := make([]loginas.Entry, 0, len(cmds))
	for _, cmd := range cmds {
		e, ok, err := parseEntry(cmd.Val())
		if err != nil {
			return nil, fmt.Errorf("redisstore: live: %w", err)
		}
		if ok && e.Live(now) && (targetID == "" || e.TargetID == targetID) {
			live = append(live, e)
		}
	}
	slices.SortFunc(live, func(a, b loginas.Entry) int {
		return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(b.ID, a.ID))
	})
	return live[:min(len(live), limit)], nil
}

// SetConsent records that targetID allows impersonation until the given
// time; its key expires then. The zero time, or a time that has passed,
// withdraws the grant.
func (s *Store) SetConsent(ctx context.Context, targetID string, until time.Time) error {
	var err error
	if until.IsZero() || !until.After(time.Now()) {
		err = s.c.Del(ctx, s.consentKey(targetID)).Err()
	} else {
		t := until.Truncate(time.Millisecond)
		err = s.c.SetArgs(ctx, s.consentKey(targetID), ms(t), redis.SetArgs{ExpireAt: t}).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: set consent: %w", err)
	}
	return nil
}

// Consent returns until when targetID allows impersonation, or the zero time
// when there is no grant or it has run out.
func (s *Store) Consent(ctx context.Context, targetID string) (time.Time, error) {
	v, err := s.c.Get(ctx, s.consentKey(targetID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("redisstore: consent: %w", err)
	}
	until, err := parseMs(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("redisstore: consent: %w", err)
	}
	return until, nil
}

// ms formats t as Unix milliseconds.
func ms(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// parseMs reads Unix milliseconds as a UTC time.
func parseMs(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("malformed time %q", s)
	}
	return time.UnixMilli(n).UTC(), nil
}

// parseEntry reads the values of entryFields, as HMGET or a script returns
// them. ok is false when there is no entry.
func parseEntry(vals []any) (e loginas.Entry, ok bool, err error) {
	if len(vals) != len(entryFields) {
		return e, false, fmt.Errorf("%d fields, want %d", len(vals), len(entryFields))
	}
	f := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
		case string:
			f[i] = v
		default:
			return e, false, fmt.Errorf("field %s is a %T", entryFields[i], v)
		}
	}
	if f[0] == "" {
		return e, false, nil
	}
	e = loginas.Entry{
		ID: f[0], ActorID: f[1], ActorName: f[2], TargetID: f[3], TargetName: f[4],
		Reason: f[5], Cause: loginas.Cause(f[9]),
	}
	if e.Started, err = parseMs(f[6]); err != nil {
		return e, false, fmt.Errorf("entry %s: started: %w", e.ID, err)
	}
	if e.Deadline, err = parseMs(f[7]); err != nil {
		return e, false, fmt.Errorf("entry %s: deadline: %w", e.ID, err)
	}
	if f[8] != "" {
		if e.Ended, err = parseMs(f[8]); err != nil {
			return e, false, fmt.Errorf("entry %s: ended: %w", e.ID, err)
		}
	}
	return e, true, nil
}
