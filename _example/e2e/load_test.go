package e2e

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The load tool, which BENCHMARKS.md's numbers come from, drives a real
// instance in each of its modes without a failed cycle, and reports the
// server CPU of the process it is given.
func TestLoadToolModes(t *testing.T) {
	t.Parallel()
	bin := loadTool.build(t)
	a := startApp(t, "app", appConfig{})
	pid := strconv.Itoa(a.proc.cmd.Process.Pid)
	cpu := regexp.MustCompile(`(?m)^server CPU  \S+ in all, \S+ per (cycle|request)`)
	for _, mode := range []string{"cycle", "userpage", "page", "floor"} {
		t.Run(mode, func(t *testing.T) {
			out, err := exec.Command(bin, "-url", a.URL, "-clients", "2", "-duration", "1s", "-mode", mode, "-pid", pid).CombinedOutput()
			report := string(out)
			if err != nil {
				t.Fatalf("load -mode %s: %v\n%s", mode, err, report)
			}
			if !strings.Contains(report, " 0 failed") || !cpu.MatchString(report) {
				t.Errorf("load -mode %s: want no failure and the server CPU:\n%s", mode, report)
			}
		})
	}
	out, err := exec.Command(bin, "-url", a.URL, "-mode", "none").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-mode must be cycle, userpage, page or floor") {
		t.Errorf("load -mode none: %v, want the list of modes:\n%s", err, out)
	}
}
