package redistest_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gin-loginas/loginas/redisstore/redistest"
)

// TestStopStart shows that a value written before Stop, or before Kill, is
// there after Start, on the same address, and that nothing answers while
// the server is stopped.
func TestStopStart(t *testing.T) {
	srv := redistest.Start(t)
	if got := do(t, srv.Addr, "SET k v1"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	srv.Stop(t)
	if conn, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s accepts connections after Stop", srv.Addr)
	}
	srv.Start(t)
	if got := do(t, srv.Addr, "GET k"); got != "$2 v1" {
		t.Fatalf("GET after Stop and Start = %q, want v1", got)
	}
	if got := do(t, srv.Addr, "SET k v2"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	srv.Kill(t)
	srv.Start(t)
	if got := do(t, srv.Addr, "GET k"); got != "$2 v2" {
		t.Fatalf("GET after Kill and Start = %q, want v2", got)
	}
}

// do sends one inline command and returns its reply's first line, and for a
// bulk string its second, joined by a space.
func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\r\n", cmd); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "$") && line != "$-1" {
		next, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line += " " + strings.TrimSpace(next)
	}
	return line
}
