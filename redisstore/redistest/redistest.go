// Package redistest is a test helper: it runs a throw-away redis-server for
// the duration of a test, and stops and restarts it to test what an app
// does while Redis is down and after it comes back.
//
//	func TestSomething(t *testing.T) {
//		srv := redistest.Start(t)
//		client := redis.NewClient(&redis.Options{Addr: srv.Addr})
//		...
//	}
//
// The server listens on 127.0.0.1 on a free port and keeps its data in an
// append-only file, written through on every write, in a temporary
// directory, so a restart keeps what was written. It needs redis-server on
// the PATH: without it Start fails the test when the environment variable
// CI is "true", and skips it otherwise.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// installHint says how to get redis-server.
const installHint = "install it: apt-get install -y redis-server"

// readyTimeout is how long Start waits for the server to answer PING.
const readyTimeout = 15 * time.Second

// stopTimeout is how long Stop waits for the server to exit on SIGTERM
// before it kills it.
const stopTimeout = 10 * time.Second

// Server is a redis-server run by Start. Its methods must be called from
// the test's goroutine, not concurrently.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port. It stays the same
	// across Stop and Start.
	Addr string

	bin  string
	port int
	dir  string
	proc *proc
}

// Start runs a redis-server for t and waits until it answers PING. The
// server is stopped when t and its subtests end; if t failed, its output
// is logged.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := fmt.Sprintf("redis-server not found (%v): %s", err, installHint)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if s.proc == nil {
			return
		}
		s.halt(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("output of redis-server on %s:\n%s", s.Addr, tail(s.proc.out.String(), 4000))
		}
	})
	// A free port may be taken again before the server binds it: try a few.
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		err := s.run()
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error()+s.proc.out.String(), "in use") {
			t.Fatalf("redistest: %v\n%s", err, tail(s.proc.out.String(), 4000))
		}
	}
}

// Start runs the server again after Stop or Kill, on the same port and with
// the same data directory, and waits until it has loaded its data and
// answers PING.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if s.running() {
		t.Fatalf("redistest: the server on %s is running already", s.Addr)
	}
	if err := s.run(); err != nil {
		t.Fatalf("redistest: %v\n%s", err, tail(s.proc.out.String(), 4000))
	}
}

// Stop shuts the server down with SIGTERM, as an orderly restart does, and
// waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.halt(t, syscall.SIGTERM)
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it
// to exit. What it acknowledged is in the append-only file all the same.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.halt(t, syscall.SIGKILL)
}

func (s *Server) running() bool {
	return s.proc != nil && !s.proc.exited()
}

// run starts the process and waits until it, not another server on the
// port, answers.
func (s *Server) run() error {
	p := &proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--daemonize", "no", "--logfile", "")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	s.proc = p
	if err := p.cmd.Start(); err != nil {
		close(p.done)
		return fmt.Errorf("starting redis-server: %w", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		pid, err := 0, ping(s.Addr)
		if err == nil {
			pid, err = serverPID(s.Addr)
		}
		switch {
		case err == nil && pid == p.cmd.Process.Pid:
			return nil
		case err == nil:
			// Another test's server took the port first.
			p.kill()
			return fmt.Errorf("port %d is in use by another redis-server (pid %d)", s.port, pid)
		case p.exited():
			return fmt.Errorf("redis-server on %s exited: %v", s.Addr, p.err)
		case time.Now().After(deadline):
			s.proc.kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %s: %w", s.Addr, readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// halt sends sig to the server, if it runs, and waits for it to exit,
// killing it if it is still there after stopTimeout.
func (s *Server) halt(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if !s.running() {
		return
	}
	_ = s.proc.cmd.Process.Signal(sig)
	select {
	case <-s.proc.done:
		return
	case <-time.After(stopTimeout):
	}
	t.Errorf("redistest: redis-server on %s did not exit within %s of %v; killing it", s.Addr, stopTimeout, sig)
	s.proc.kill()
}

// proc is one run of redis-server.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // what Wait returned, once done is closed
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// ping sends PING and expects PONG. A server that is still loading its
// data answers with an error.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// serverPID asks the server on addr for its process ID (INFO server), so
// that a test knows it talks to the server it started.
func serverPID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(head), "$"))
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(head))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output; its methods may be called from
// several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
