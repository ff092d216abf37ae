// Package pgtest is a test helper that runs a throwaway PostgreSQL server
// for the tests of a package: on 127.0.0.1 and a free port, with its data
// directory in a new temporary directory, stopped and removed when the test
// ends. It uses the server binaries of the machine (initdb, pg_ctl,
// createdb), from /usr/lib/postgresql/15/bin, else the newest
// /usr/lib/postgresql/*/bin, else $PATH. As root, it runs them as the
// postgres user, in a directory under os.TempDir that it gives to that
// user. Without them, the test is skipped, or fails when the environment
// variable CI is true.
//
// The server runs with fsync off: its data outlives Stop and Start, not a
// crash of the machine.
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// missing is the message of a test that cannot find the server binaries.
const missing = "PostgreSQL server binaries (initdb, pg_ctl) not found; install it: apt-get install -y postgresql"

// User is the superuser of the server, who needs no password.
const User = "app"

// Database is the database that URL names.
const Database = "app"

// Server is a PostgreSQL server that Start started for a test.
type Server struct {
	// URL reaches the database Database as User, for the pgx driver or any
	// other, such as postgres://app@127.0.0.1:5432/app?sslmode=disable.
	URL string
	// Port is the TCP port the server listens on, on 127.0.0.1.
	Port int
	// Dir is the temporary directory of the server: its data directory,
	// log file and socket.
	Dir string

	bin     string
	asUser  *user.User // the OS user who runs the binaries, when not this one
	mu      sync.Mutex
	running bool
	dbs     atomic.Int64
}

// Start initializes and starts a new server, and stops it and removes its
// directory when t and its subtests end.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBin()
	if bin == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root needs the postgres user: %v", err)
		}
		s.asUser = u
	}
	// Not t.TempDir: its parents may be closed to the postgres user.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s.Dir = dir
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("%v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgtest: remove %s: %v", dir, err)
		}
	})
	if s.asUser != nil {
		uid, _ := strconv.Atoi(s.asUser.Uid)
		gid, _ := strconv.Atoi(s.asUser.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	s.Port = freePort(t)
	s.URL = s.urlOf(Database)
	s.run(t, "initdb", "-D", s.dataDir(), "-A", "trust", "-U", User, "-E", "UTF8", "--locale=C", "--no-sync")
	s.Start(t)
	s.run(t, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", User, Database)
	return s
}

// Start starts the server again after Stop, on the same data directory and
// port. It returns once the server accepts connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		t.Fatal("pgtest: Start: the server is running")
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", s.Port, s.Dir)
	if err := s.exec("pg_ctl", "-D", s.dataDir(), "-o", opts, "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60", "start"); err != nil {
		// A server that was not ready in time may still be starting: stop
		// it, so that none outlives the test.
		_ = s.exec("pg_ctl", "-D", s.dataDir(), "-m", "immediate", "-w", "stop")
		t.Fatal(err)
	}
	s.running = true
}

// Stop stops the server (fast shutdown: open connections are cut). Start
// brings it back.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if err := s.exec("pg_ctl", "-D", s.dataDir(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		// The data directory is removed next: never leave a server on it.
		if again := s.exec("pg_ctl", "-D", s.dataDir(), "-m", "immediate", "-w", "stop"); again != nil {
			return errors.Join(err, again)
		}
		s.running = false
		return err
	}
	s.running = false
	return nil
}

// NewDatabase creates a new, empty database and returns its URL, for tests
// that must not see one another's rows.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "db" + strconv.FormatInt(s.dbs.Add(1), 10)
	s.run(t, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", User, name)
	return s.urlOf(name)
}

// Log returns what the server has written to its log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
	return string(b)
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

func (s *Server) urlOf(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(User),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// run runs one of the server's binaries and fails t if it fails.
func (s *Server) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if err := s.exec(name, args...); err != nil {
		t.Fatal(err)
	}
}

// exec runs one of the server's binaries, as the postgres user when this
// process is root.
func (s *Server) exec(name string, args ...string) error {
	path := filepath.Join(s.bin, name)
	if s.asUser != nil {
		args = append([]string{"-u", s.asUser.Username, "--", path}, args...)
		path = "runuser"
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: %s %s (after %s): %v\n%s\nserver log:\n%s",
			name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, out, s.Log())
	}
	return nil
}

// findBin returns the directory of the server binaries, or "".
func findBin() string {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "createdb"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := "/usr/lib/postgresql/15/bin"; has(dir) {
		return dir
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if has(dir) {
			return dir
		}
	}
	if path, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(path)) {
		return filepath.Dir(path)
	}
	return ""
}

// version is the major version in a path /usr/lib/postgresql/N/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
