package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-loginas/loginas"
	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// User is an account of the example app.
type User struct {
	ID          int64
	Username    string
	DisplayName string
	Email       string
	IsStaff     bool
	IsSuperuser bool
	IsActive    bool
	Joined      time.Time
	LastLogin   sql.NullTime
	hash        []byte
}

// IDString is the user's ID as the loginas plugin and the session keep it.
func (u *User) IDString() string { return strconv.FormatInt(u.ID, 10) }

// Role names the user's rights for the pages.
func (u *User) Role() string {
	switch {
	case u.IsSuperuser:
		return "superuser"
	case u.IsStaff:
		return "staff"
	}
	return "user"
}

// seedUser is one of the named accounts every fresh database starts with.
type seedUser struct {
	name      string
	staff     bool
	superuser bool
	active    bool
}

// seedUsers are inserted in this order, so their IDs are 1 to 6 in every
// fresh database. Each one's password is its name.
var seedUsers = []seedUser{
	{name: "admin", staff: true, superuser: true, active: true},
	{name: "root", staff: true, superuser: true, active: true},
	{name: "staff", staff: true, active: true},
	{name: "alice", active: true},
	{name: "bob", active: true},
	{name: "carol", active: false},
}

// loadUserName returns the name of the i-th extra user (1-based) made by
// -seed-users: user0001, user0002, …
func loadUserName(i int) string { return fmt.Sprintf("user%04d", i) }

// errNoUser is returned by the lookups when no user matches.
var errNoUser = errors.New("no such user")

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id            INTEGER PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	display_name  TEXT NOT NULL DEFAULT '',
	email         TEXT NOT NULL DEFAULT '',
	password_hash BLOB NOT NULL,
	is_staff      INTEGER NOT NULL DEFAULT 0,
	is_superuser  INTEGER NOT NULL DEFAULT 0,
	is_active     INTEGER NOT NULL DEFAULT 1,
	joined        INTEGER NOT NULL,
	last_login    INTEGER
);
CREATE TABLE IF NOT EXISTS audit_events (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	time             INTEGER NOT NULL,
	action           TEXT NOT NULL,
	cause            TEXT NOT NULL DEFAULT '',
	impersonation_id TEXT NOT NULL DEFAULT '',
	actor_id         TEXT NOT NULL DEFAULT '',
	actor_name       TEXT NOT NULL DEFAULT '',
	target_id        TEXT NOT NULL DEFAULT '',
	target_name      TEXT NOT NULL DEFAULT '',
	reason           TEXT NOT NULL DEFAULT '',
	detail           TEXT NOT NULL DEFAULT '',
	ip               TEXT NOT NULL DEFAULT '',
	user_agent       TEXT NOT NULL DEFAULT '',
	method           TEXT NOT NULL DEFAULT '',
	path             TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS loginas_end_all (
	actor_id TEXT PRIMARY KEY,
	at       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS loginas_ended (
	impersonation_id TEXT PRIMARY KEY,
	until            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS loginas_ended_until ON loginas_ended (until);
CREATE TABLE IF NOT EXISTS api_keys (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name     TEXT NOT NULL,
	key_hash BLOB NOT NULL UNIQUE,
	last4    TEXT NOT NULL,
	created  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id, id);
`

// DB holds the users, the audit trail and the ended impersonations in
// SQLite.
type DB struct {
	sql *sql.DB
	now func() time.Time // the plugin's clock, for dropping stale entries
}

// openDB opens the SQLite database at path, or a fresh database in memory
// when path is empty, and creates the tables.
func openDB(path string) (*DB, error) {
	var dsn string
	if path == "" {
		// Each connection to ":memory:" would be a database of its own, so
		// the pool keeps exactly one connection, forever.
		dsn = ":memory:?_pragma=foreign_keys(1)&_txlock=immediate"
	} else {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		dsn = "file:" + path + "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	if path == "" {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err = db.ExecContext(ctx, schema); err == nil {
		err = addDisplayName(ctx, db)
	}
	if err != nil {
		_ = db.Close()
		if path != "" {
			return nil, fmt.Errorf("opening database %s: %w", path, err)
		}
		return nil, fmt.Errorf("creating database: %w", err)
	}
	return &DB{sql: db, now: time.Now}, nil
}

// addDisplayName adds the display_name column to a users table made before
// it existed, filled with the usernames. Instances sharing the file may race
// to add it: the loser finds it there and carries on.
func addDisplayName(ctx context.Context, db *sql.DB) error {
	has := func() (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('users') WHERE name = 'display_name'`).Scan(&n)
		return n > 0, err
	}
	if ok, err := has(); err != nil || ok {
		return err
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT ''`); err != nil {
		if ok, _ := has(); !ok {
			return err
		}
	}
	_, err := db.ExecContext(ctx, `UPDATE users SET display_name = username WHERE display_name = ''`)
	return err
}

// displayNameOf is the display name a seeded user starts with: the name
// with a capital letter (alice: Alice), or "User 0001" for user0001.
func displayNameOf(name string) string {
	if rest, ok := strings.CutPrefix(name, "user"); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
		return "User " + rest
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

// seed fills an empty database with the named users (IDs 1 to 6, in the
// order of seedUsers), then makes sure the extra users user0001..userNNNN
// exist with IDs 7, 8, …. Several instances may seed one file at the same
// time: passwords are hashed before the write transaction, which serializes
// the instances and looks again, and rows that exist are left alone. It
// reports whether the named users were created now.
func (db *DB) seed(ctx context.Context, extra int, cost int) (bool, error) {
	empty, missing, err := db.needsSeed(ctx, db.sql, extra)
	if err != nil || (!empty && !missing) {
		return false, err
	}
	var named, extras [][]byte
	if empty {
		for _, u := range seedUsers {
			hash, err := bcrypt.GenerateFromPassword([]byte(u.name), cost)
			if err != nil {
				return false, err
			}
			named = append(named, hash)
		}
	}
	if missing {
		if extras, err = hashLoadUsers(extra, bcrypt.MinCost); err != nil {
			return false, err
		}
	}

	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	if empty, _, err = db.needsSeed(ctx, tx, 0); err != nil {
		return false, err
	}
	now := time.Now().Unix()
	created := empty && named != nil
	if created {
		for i, u := range seedUsers {
			_, err = tx.ExecContext(ctx, `INSERT INTO users (id, username, display_name, email, password_hash, is_staff, is_superuser, is_active, joined)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, i+1, u.name, displayNameOf(u.name), u.name+"@example.com", named[i], u.staff, u.superuser, u.active, now)
			if err != nil {
				return false, err
			}
		}
	}
	if extras != nil {
		stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO users (id, username, display_name, email, password_hash, is_active, joined) VALUES (?, ?, ?, ?, ?, 1, ?)`)
		if err != nil {
			return false, err
		}
		defer func() { _ = stmt.Close() }()
		for i := 1; i <= extra; i++ {
			name := loadUserName(i)
			if _, err := stmt.ExecContext(ctx, len(seedUsers)+i, name, displayNameOf(name), name+"@example.com", extras[i-1], now); err != nil {
				return false, err
			}
		}
	}
	return created, tx.Commit()
}

// querier is what *sql.DB and *sql.Tx have in common here.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// needsSeed reports whether the users table is empty, and whether some of
// the first extra load users are missing.
func (db *DB) needsSeed(ctx context.Context, q querier, extra int) (empty, missing bool, err error) {
	var users, extras int
	err = q.QueryRowContext(ctx, `SELECT count(*), count(CASE WHEN id > ?1 AND id <= ?1 + ?2 THEN 1 END) FROM users`,
		len(seedUsers), extra).Scan(&users, &extras)
	return users == 0, extras < extra, err
}

// hashLoadUsers hashes the passwords of the n extra users on every core:
// each password is the user's name.
func hashLoadUsers(n, cost int) ([][]byte, error) {
	hashes := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				hashes[i], errs[i] = bcrypt.GenerateFromPassword([]byte(loadUserName(i+1)), cost)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return hashes, errors.Join(errs...)
}

const userColumns = `id, username, display_name, email, password_hash, is_staff, is_superuser, is_active, joined, last_login`

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (*User, error) {
	var u User
	var joined int64
	var lastLogin sql.NullInt64
	if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.hash, &u.IsStaff, &u.IsSuperuser, &u.IsActive, &joined, &lastLogin); err != nil {
		return nil, err
	}
	u.Joined = time.Unix(joined, 0).UTC()
	if lastLogin.Valid {
		u.LastLogin = sql.NullTime{Time: time.Unix(lastLogin.Int64, 0).UTC(), Valid: true}
	}
	return &u, nil
}

// UserByID returns the user with the given ID, or errNoUser.
func (db *DB) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoUser
	}
	return u, err
}

// UserByName returns the user with the given name, or errNoUser.
func (db *DB) UserByName(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoUser
	}
	return u, err
}

// Users returns one page of users whose name or e-mail contains query,
// ordered by ID, and the number of matching users.
func (db *DB) Users(ctx context.Context, query string, offset, limit int) ([]*User, int, error) {
	pattern := "%" + escapeLike(query) + "%"
	var total int
	err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE username LIKE ?1 ESCAPE '\' OR email LIKE ?1 ESCAPE '\'`, pattern).Scan(&total)
	if err != nil {
		return nil, 0, err
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE username LIKE ?1 ESCAPE '\' OR email LIKE ?1 ESCAPE '\' ORDER BY id LIMIT ?2 OFFSET ?3`, pattern, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = rows.Close() }()
	var users []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, err
		}
		users = append(users, u)
	}
	return users, total, rows.Err()
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// UserCounts are the numbers on the dashboard.
type UserCounts struct {
	Total, Active, Staff, Superusers int
}

// CountUsers counts the users by kind.
func (db *DB) CountUsers(ctx context.Context) (UserCounts, error) {
	var n UserCounts
	err := db.sql.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(is_active), 0), coalesce(sum(is_staff), 0), coalesce(sum(is_superuser), 0) FROM users`).
		Scan(&n.Total, &n.Active, &n.Staff, &n.Superusers)
	return n, err
}

// TouchLogin records a successful sign-in with a password.
func (db *DB) TouchLogin(ctx context.Context, id int64, at time.Time) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE users SET last_login = ? WHERE id = ?`, at.Unix(), id)
	return err
}

// SetActive enables or disables a user.
func (db *DB) SetActive(ctx context.Context, id int64, active bool) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE users SET is_active = ? WHERE id = ?`, active, id)
	return err
}

// SetPassword stores a new password hash.
func (db *DB) SetPassword(ctx context.Context, id int64, hash []byte) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id)
	return err
}

// UpdateProfile stores a user's display name and e-mail address.
func (db *DB) UpdateProfile(ctx context.Context, id int64, displayName, email string) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE users SET display_name = ?, email = ? WHERE id = ?`, displayName, email, id)
	return err
}

// APIKey is a stored API key: its SHA-256 hash and its last four
// characters, never the key itself.
type APIKey struct {
	ID      int64
	UserID  int64
	Name    string
	Last4   string
	Created time.Time
}

// errTooManyKeys is returned by AddAPIKey when the user has their maximum.
var errTooManyKeys = errors.New("too many API keys")

// APIKeys returns the user's keys, oldest first.
func (db *DB) APIKeys(ctx context.Context, userID int64) ([]APIKey, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, user_id, name, last4, created FROM api_keys WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var keys []APIKey
	for rows.Next() {
		var k APIKey
		var created int64
		if err := rows.Scan(&k.ID, &k.UserID, &k.Name, &k.Last4, &created); err != nil {
			return nil, err
		}
		k.Created = time.Unix(created, 0).UTC()
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// AddAPIKey stores a new key of the user, by its hash, unless the user has
// limit keys already (errTooManyKeys).
func (db *DB) AddAPIKey(ctx context.Context, userID int64, name string, hash []byte, last4 string, limit int) (APIKey, error) {
	k := APIKey{UserID: userID, Name: name, Last4: last4, Created: db.now().UTC().Truncate(time.Second)}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return k, err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE user_id = ?`, userID).Scan(&n); err != nil {
		return k, err
	}
	if n >= limit {
		return k, errTooManyKeys
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO api_keys (user_id, name, key_hash, last4, created) VALUES (?, ?, ?, ?, ?)`,
		userID, name, hash, last4, k.Created.Unix())
	if err != nil {
		return k, err
	}
	if k.ID, err = res.LastInsertId(); err != nil {
		return k, err
	}
	return k, tx.Commit()
}

// DeleteAPIKey deletes the key if it is the user's and returns it; else
// sql.ErrNoRows.
func (db *DB) DeleteAPIKey(ctx context.Context, userID, keyID int64) (APIKey, error) {
	k := APIKey{ID: keyID, UserID: userID}
	var created int64
	err := db.sql.QueryRowContext(ctx, `DELETE FROM api_keys WHERE id = ? AND user_id = ? RETURNING name, last4, created`, keyID, userID).
		Scan(&k.Name, &k.Last4, &created)
	k.Created = time.Unix(created, 0).UTC()
	return k, err
}

// The database is the plugin's Revocations: every instance sharing the file
// sees EndAll and the ends of single impersonations.
var (
	_ loginas.Revocations         = (*DB)(nil)
	_ loginas.EndedImpersonations = (*DB)(nil)
)

// EndAll records that every impersonation actorID started at or before at
// is over.
func (db *DB) EndAll(ctx context.Context, actorID string, at time.Time) error {
	_, err := db.sql.ExecContext(ctx, `INSERT INTO loginas_end_all (actor_id, at) VALUES (?1, ?2)
		ON CONFLICT (actor_id) DO UPDATE SET at = max(at, ?2)`, actorID, at.UnixNano())
	return err
}

// EndedAt returns the latest EndAll moment for actorID, or the zero time.
func (db *DB) EndedAt(ctx context.Context, actorID string) (time.Time, error) {
	var at int64
	err := db.sql.QueryRowContext(ctx, `SELECT at FROM loginas_end_all WHERE actor_id = ?`, actorID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, at), nil
}

// EndImpersonation records that impersonation id is over, until its
// deadline; entries past their deadline are dropped on the way.
func (db *DB) EndImpersonation(ctx context.Context, id string, until time.Time) error {
	_, err := db.sql.ExecContext(ctx, `INSERT OR REPLACE INTO loginas_ended (impersonation_id, until) VALUES (?, ?)`, id, until.UnixNano())
	if err != nil {
		return err
	}
	_, err = db.sql.ExecContext(ctx, `DELETE FROM loginas_ended WHERE until < ?`, db.now().Add(-time.Minute).UnixNano())
	return err
}

// ImpersonationEnded reports whether EndImpersonation recorded id.
func (db *DB) ImpersonationEnded(ctx context.Context, id string) (bool, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM loginas_ended WHERE impersonation_id = ?`, id).Scan(&n)
	return n > 0, err
}

// AuditRow is one stored audit event.
type AuditRow struct {
	ID              int64
	Time            time.Time
	Action          string
	Cause           string
	ImpersonationID string
	ActorID         string
	ActorName       string
	TargetID        string
	TargetName      string
	Reason          string
	Detail          string
	IP              string
	UserAgent       string
	Method          string
	Path            string
}

// AddAudit stores an audit event.
func (db *DB) AddAudit(ctx context.Context, e AuditRow) error {
	_, err := db.sql.ExecContext(ctx, `INSERT INTO audit_events
		(time, action, cause, impersonation_id, actor_id, actor_name, target_id, target_name, reason, detail, ip, user_agent, method, path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Time.UnixMicro(), e.Action, e.Cause, e.ImpersonationID, e.ActorID, e.ActorName, e.TargetID, e.TargetName,
		e.Reason, e.Detail, e.IP, e.UserAgent, e.Method, e.Path)
	return err
}

// Audit returns one page of audit events, newest first, and how many there
// are in all. A non-empty action keeps only events with that action.
func (db *DB) Audit(ctx context.Context, action string, offset, limit int) ([]AuditRow, int, error) {
	var total int
	err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE ?1 = '' OR action = ?1`, action).Scan(&total)
	if err != nil {
		return nil, 0, err
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT id, time, action, cause, impersonation_id, actor_id, actor_name,
		target_id, target_name, reason, detail, ip, user_agent, method, path
		FROM audit_events WHERE ?1 = '' OR action = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3`, action, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	events, err := scanAudit(rows)
	return events, total, err
}

func scanAudit(rows *sql.Rows) ([]AuditRow, error) {
	defer func() { _ = rows.Close() }()
	var events []AuditRow
	for rows.Next() {
		var e AuditRow
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Action, &e.Cause, &e.ImpersonationID, &e.ActorID, &e.ActorName,
			&e.TargetID, &e.TargetName, &e.Reason, &e.Detail, &e.IP, &e.UserAgent, &e.Method, &e.Path); err != nil {
			return nil, err
		}
		e.Time = time.UnixMicro(at).UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}

// AuditAbout returns the newest events whose actor or target is the given
// user.
func (db *DB) AuditAbout(ctx context.Context, userID string, limit int) ([]AuditRow, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, time, action, cause, impersonation_id, actor_id, actor_name,
		target_id, target_name, reason, detail, ip, user_agent, method, path
		FROM audit_events WHERE target_id = ?1 OR actor_id = ?1 ORDER BY id DESC LIMIT ?2`, userID, limit)
	if err != nil {
		return nil, err
	}
	return scanAudit(rows)
}

// CountStarts returns how many impersonations started since the given time.
func (db *DB) CountStarts(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE action = 'start' AND time >= ?`, since.UnixMicro()).Scan(&n)
	return n, err
}

// randomBytes returns n bytes from the system's secure random source.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
