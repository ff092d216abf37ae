// Command load drives a running example app the way a browser would, to
// measure full impersonation cycles under load.
//
// Each of -clients clients has its own cookie jar and signs in once as an
// actor (admin or root, in turn). Then, until -duration is over, it loops:
//
//  1. GET /admin/users/:id for a random regular user, and read the
//     loginas_csrf token of the login-as button;
//  2. POST /admin/loginas/:id with the token (expect 303);
//  3. follow the redirect and read the token of the banner's return form;
//  4. GET /me (expect the target, is_impersonated true, the actor as
//     impersonator);
//  5. POST /admin/loginas/logout with the banner's token (expect 303);
//  6. GET /me (expect the actor again, not impersonated).
//
// It reports completed cycles per second, errors by cause, and the 50th,
// 90th and 99th percentile latencies of each of the six requests and of the
// whole cycle. With -pid, the process IDs of the app's instances, it also
// reports the server CPU they used during the timed loop (user and system
// time from /proc/PID/stat), per cycle and per request. With several
// comma-separated -url values, the requests are spread over them (-spread):
// sessions must then be shared, through Redis and one -secret. The exit
// status is 1 when any cycle failed.
//
// -mode userpage repeats only step 1, and -mode page only step 3 (an
// impersonated page, after one switch per client), so that -pid gives the
// server CPU of one request of that kind. -mode floor gives the floor
// beside them: clients that never sign in fetch a small static file, the
// least a request to the app costs (the server, Gin, the app's middleware).
//
//	go run ./cmd/load -url http://127.0.0.1:8080 -clients 8 -duration 20s -seed-users 1000 -pid "$(pgrep -f example)"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The seeded users of the example app (see its README).
var (
	regularTargets = []int{4, 5} // alice, bob
	firstExtraID   = 7           // user0001; user N has ID 6+N
)

type config struct {
	urls       []string
	clients    int
	duration   time.Duration
	actors     []string
	seedUsers  int
	targetsMax int
	spread     string
	reason     string
	timeout    time.Duration
	pids       []int
	mode       string
}

// The modes: full cycles, or one kind of request over and over.
const (
	modeCycle    = "cycle"
	modeUserPage = "userpage"
	modePage     = "page"
	modeFloor    = "floor"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := drive(ctx, cfg)
	if err != nil {
		return err
	}
	rep.print(out, cfg)
	if rep.failed() > 0 {
		return fmt.Errorf("%d cycles failed", rep.failed())
	}
	return nil
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var cfg config
	urls := fs.String("url", "http://127.0.0.1:8080", "base URL of the app; several, comma-separated, to spread the load over instances")
	fs.IntVar(&cfg.clients, "clients", 8, "concurrent clients, each a browser with its own session")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to run")
	actors := fs.String("actors", "admin,root", "actors the clients sign in as, in turn (password = user name)")
	fs.IntVar(&cfg.seedUsers, "seed-users", 0, "the -seed-users value the app runs with: extra targets with IDs 7..6+N")
	fs.IntVar(&cfg.targetsMax, "targets-max", 0, "highest target ID to use (0: no bound)")
	fs.StringVar(&cfg.spread, "spread", "request", "with several -url: 'request' sends each request to the next instance, 'client' pins each client to one")
	fs.StringVar(&cfg.reason, "reason", "load test", "reason sent with each switch")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one HTTP request")
	pids := fs.String("pid", "", "process IDs of the app's instances, comma- or space-separated: report the server CPU they use")
	fs.StringVar(&cfg.mode, "mode", modeCycle, "cycle (the six requests), userpage (step 1 only), page (an impersonated page only) or floor (a static file, signed out)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, f := range strings.FieldsFunc(*pids, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return cfg, fmt.Errorf("-pid %q: want process IDs", f)
		}
		cfg.pids = append(cfg.pids, pid)
	}
	for _, u := range strings.Split(*urls, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if u == "" {
			continue
		}
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return cfg, fmt.Errorf("-url %q: want a base URL such as http://127.0.0.1:8080", u)
		}
		cfg.urls = append(cfg.urls, u)
	}
	for _, a := range strings.Split(*actors, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.actors = append(cfg.actors, a)
		}
	}
	switch {
	case len(cfg.urls) == 0:
		return cfg, errors.New("-url: give at least one base URL")
	case len(cfg.actors) == 0:
		return cfg, errors.New("-actors: give at least one user name")
	case cfg.clients < 1:
		return cfg, errors.New("-clients must be at least 1")
	case cfg.duration <= 0:
		return cfg, errors.New("-duration must be positive")
	case cfg.seedUsers < 0 || cfg.targetsMax < 0:
		return cfg, errors.New("-seed-users and -targets-max must not be negative")
	case cfg.spread != "request" && cfg.spread != "client":
		return cfg, errors.New("-spread must be 'request' or 'client'")
	case !slices.Contains([]string{modeCycle, modeUserPage, modePage, modeFloor}, cfg.mode):
		return cfg, errors.New("-mode must be cycle, userpage, page or floor")
	}
	if len(cfg.targets()) == 0 {
		return cfg, fmt.Errorf("-targets-max %d leaves no target (the regular users start at ID 4)", cfg.targetsMax)
	}
	return cfg, nil
}

// targets returns the IDs of the users the clients log in as.
func (cfg config) targets() []int {
	ids := slices.Clone(regularTargets)
	for i := range cfg.seedUsers {
		ids = append(ids, firstExtraID+i)
	}
	if cfg.targetsMax > 0 {
		ids = slices.DeleteFunc(ids, func(id int) bool { return id > cfg.targetsMax })
	}
	return ids
}

// cycleError is a failed step: its cause is what the report counts.
type cycleError struct{ cause string }

func (e *cycleError) Error() string { return e.cause }

func fail(format string, args ...any) error {
	return &cycleError{cause: fmt.Sprintf(format, args...)}
}

// client is one browser.
type client struct {
	cfg    config
	http   *http.Client
	actor  string
	target []int
	rng    *rand.Rand
	next   int // index of the instance for the next request
}

func newClient(cfg config, n int, transport http.RoundTripper) (*client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &client{
		cfg: cfg,
		http: &http.Client{
			Jar:           jar,
			Transport:     transport,
			Timeout:       cfg.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		actor:  cfg.actors[n%len(cfg.actors)],
		target: cfg.targets(),
		rng:    rand.New(rand.NewPCG(uint64(n), uint64(time.Now().UnixNano()))),
		next:   n % len(cfg.urls),
	}, nil
}

// base returns the instance for the next request.
func (c *client) base() string {
	b := c.cfg.urls[c.next]
	if c.cfg.spread == "request" {
		c.next = (c.next + 1) % len(c.cfg.urls)
	}
	return b
}

type response struct {
	status   int
	location string
	body     string
}

func (c *client) do(ctx context.Context, method, path string, form url.Values) (response, error) {
	base := c.base()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		// What a browser sends with a same-origin form.
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Referer", base+"/")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		return response{}, fail("%s %s: transport error", method, pattern(path))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return response{}, fail("%s %s: reading the body", method, pattern(path))
	}
	return response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}, nil
}

// pattern names a route for error causes without the user ID.
func pattern(path string) string {
	for _, prefix := range []string{"/admin/users/", "/admin/loginas/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "logout" {
			return prefix + ":id"
		}
	}
	return path
}

func (c *client) signIn(ctx context.Context) error {
	r, err := c.do(ctx, http.MethodPost, "/login", url.Values{"username": {c.actor}, "password": {c.actor}})
	if err != nil {
		return err
	}
	if r.status != http.StatusSeeOther {
		return fail("POST /login: status %d", r.status)
	}
	return nil
}

// me is the example's GET /me.
type me struct {
	ID             *int    `json:"id"`
	Username       string  `json:"username"`
	IsImpersonated bool    `json:"is_impersonated"`
	Impersonator   *string `json:"impersonator"`
}

func (c *client) me(ctx context.Context) (me, int, error) {
	var m me
	r, err := c.do(ctx, http.MethodGet, "/me", nil)
	if err != nil {
		return m, 0, err
	}
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		return m, r.status, fail("GET /me: status %d, not JSON", r.status)
	}
	return m, r.status, nil
}

var formRE = regexp.MustCompile(`(?s)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
var tokenRE = regexp.MustCompile(`name="loginas_csrf"\s+value="([^"]*)"`)

// formToken returns the loginas_csrf value of the page's form posting to
// action.
func formToken(page, action string) (string, bool) {
	for _, m := range formRE.FindAllStringSubmatch(page, -1) {
		if html.UnescapeString(m[1]) != action {
			continue
		}
		if t := tokenRE.FindStringSubmatch(m[2]); t != nil {
			return html.UnescapeString(t[1]), true
		}
	}
	return "", false
}

// The requests of a cycle, in order.
var steps = []string{"user page", "switch POST", "landing page", "/me as target", "return POST", "/me as actor"}

// timings of one cycle: each request's, and the whole.
type timings struct {
	step  [6]time.Duration
	cycle time.Duration
}

// cycle runs one full cycle; see the package comment.
func (c *client) cycle(ctx context.Context) (timings, error) {
	var t timings
	start := time.Now()
	target := c.target[c.rng.IntN(len(c.target))]
	id := strconv.Itoa(target)

	at := time.Now()
	lap := func(i int) {
		now := time.Now()
		t.step[i] = now.Sub(at)
		at = now
	}
	token, err := c.openUserPage(ctx, id)
	lap(0)
	if err != nil {
		return t, err
	}
	landing, err := c.switchTo(ctx, id, token)
	lap(1)
	if err != nil {
		return t, err
	}
	back, err := c.openLanding(ctx, landing)
	lap(2)
	if err != nil {
		return t, err
	}

	m, status, err := c.me(ctx)
	lap(3)
	if err != nil {
		return t, err
	}
	switch {
	case status != http.StatusOK:
		return t, fail("GET /me after the switch: status %d", status)
	case !m.IsImpersonated:
		return t, fail("GET /me after the switch: not impersonated")
	case m.ID == nil || *m.ID != target:
		return t, fail("GET /me after the switch: another user than the target")
	case m.Impersonator == nil || *m.Impersonator != c.actor:
		return t, fail("GET /me after the switch: another impersonator than the actor")
	}

	ret, err := c.do(ctx, http.MethodPost, "/admin/loginas/logout", url.Values{"loginas_csrf": {back}})
	lap(4)
	if err != nil {
		return t, err
	}
	if ret.status != http.StatusSeeOther {
		return t, fail("POST /admin/loginas/logout: status %d", ret.status)
	}

	m, status, err = c.me(ctx)
	lap(5)
	if err != nil {
		return t, err
	}
	switch {
	case status != http.StatusOK:
		return t, fail("GET /me after the return: status %d", status)
	case m.IsImpersonated:
		return t, fail("GET /me after the return: still impersonated")
	case m.Username != c.actor:
		return t, fail("GET /me after the return: not the actor")
	}
	t.cycle = time.Since(start)
	return t, nil
}

// openUserPage is step 1: the admin page of user id, and the token of its
// login-as button.
func (c *client) openUserPage(ctx context.Context, id string) (token string, err error) {
	page, err := c.do(ctx, http.MethodGet, "/admin/users/"+id, nil)
	if err != nil {
		return "", err
	}
	if page.status != http.StatusOK {
		return "", fail("GET /admin/users/:id: status %d", page.status)
	}
	token, ok := formToken(page.body, "/admin/loginas/"+id)
	if !ok {
		return "", fail("GET /admin/users/:id: no login-as button")
	}
	return token, nil
}

// switchTo is step 2: the switch to user id, and the local path it
// redirects to.
func (c *client) switchTo(ctx context.Context, id, token string) (landing string, err error) {
	sw, err := c.do(ctx, http.MethodPost, "/admin/loginas/"+id, url.Values{"loginas_csrf": {token}, "reason": {c.cfg.reason}})
	if err != nil {
		return "", err
	}
	if sw.status != http.StatusSeeOther {
		return "", fail("POST /admin/loginas/:id: status %d", sw.status)
	}
	if !strings.HasPrefix(sw.location, "/") || strings.HasPrefix(sw.location, "//") {
		return "", fail("POST /admin/loginas/:id: redirect to %q, not a local path", sw.location)
	}
	return sw.location, nil
}

// openLanding is step 3: a page of the app while impersonating, and the
// token of its banner's return form.
func (c *client) openLanding(ctx context.Context, path string) (token string, err error) {
	page, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return "", err
	}
	if page.status != http.StatusOK {
		return "", fail("GET a page while impersonating: status %d", page.status)
	}
	token, ok := formToken(page.body, "/admin/loginas/logout")
	if !ok || !strings.Contains(page.body, "loginas-banner") {
		return "", fail("GET a page while impersonating: no banner with a return form")
	}
	return token, nil
}

// recover brings the client back to "signed in as the actor" after a
// failed cycle: it returns from an impersonation, or signs in again.
func (c *client) recover(ctx context.Context) error {
	m, status, err := c.me(ctx)
	if err != nil {
		return err
	}
	if status == http.StatusOK && m.IsImpersonated {
		home, err := c.do(ctx, http.MethodGet, "/", nil)
		if err != nil {
			return err
		}
		if token, ok := formToken(home.body, "/admin/loginas/logout"); ok {
			if _, err := c.do(ctx, http.MethodPost, "/admin/loginas/logout", url.Values{"loginas_csrf": {token}}); err != nil {
				return err
			}
		}
		m, status, err = c.me(ctx)
		if err != nil {
			return err
		}
	}
	if status == http.StatusOK && m.Username == c.actor && !m.IsImpersonated {
		return nil
	}
	return c.signIn(ctx)
}

// report gathers the results of all clients.
type report struct {
	mu      sync.Mutex
	elapsed time.Duration
	cycles  int // or requests, in the single-request modes
	steps   [6][]time.Duration
	whole   []time.Duration
	errors  map[string]int
	// cpu is the server CPU time the -pid processes used during the timed
	// loop; zero without -pid.
	cpu time.Duration
}

func (r *report) add(t timings, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errors[err.Error()]++
		return
	}
	for i, d := range t.step {
		if d > 0 {
			r.steps[i] = append(r.steps[i], d)
		}
	}
	r.cycles++
	r.whole = append(r.whole, t.cycle)
}

func (r *report) failed() int {
	n := 0
	for _, v := range r.errors {
		n += v
	}
	return n
}

func drive(ctx context.Context, cfg config) (*report, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 2 * cfg.clients * len(cfg.urls)
	transport.MaxIdleConnsPerHost = 2 * cfg.clients
	defer transport.CloseIdleConnections()

	clients := make([]*client, cfg.clients)
	for n := range clients {
		c, err := newClient(cfg, n, transport)
		if err != nil {
			return nil, err
		}
		clients[n] = c
	}
	// Everyone signs in before the clock starts (but for the floor).
	for _, c := range clients {
		if cfg.mode == modeFloor {
			break
		}
		if err := c.signIn(ctx); err != nil {
			return nil, fmt.Errorf("signing in as %s: %w", c.actor, err)
		}
	}

	if cfg.mode == modePage {
		for _, c := range clients {
			if err := c.impersonate(ctx); err != nil {
				return nil, fmt.Errorf("switching before the timed loop: %w", err)
			}
		}
	}
	// At the deadline each client finishes the cycle it is in and stops:
	// requests are not cut off (which the server would log as failures),
	// and the elapsed time runs until the last client is done.
	rep := &report{errors: map[string]int{}}
	cpuBefore, err := processCPU(cfg.pids)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for _, c := range clients {
		step := c.cycle
		switch cfg.mode {
		case modeUserPage:
			step = c.userPage
		case modePage:
			step = c.page
		case modeFloor:
			step = c.floor
		}
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t, err := step(ctx)
				if ctx.Err() != nil {
					return // interrupted
				}
				rep.add(t, err)
				if err != nil {
					if err := c.recover(ctx); err != nil && ctx.Err() == nil {
						rep.add(timings{}, fail("recovering after a failed cycle: %v", err))
					}
				}
			}
		})
	}
	wg.Wait()
	rep.elapsed = time.Since(start)
	cpuAfter, err := processCPU(cfg.pids)
	if err != nil {
		return nil, err
	}
	rep.cpu = cpuAfter - cpuBefore
	return rep, nil
}

// userPage is one request of -mode userpage: an admin user page, with its
// login-as button.
func (c *client) userPage(ctx context.Context) (timings, error) {
	var t timings
	start := time.Now()
	_, err := c.openUserPage(ctx, strconv.Itoa(c.target[c.rng.IntN(len(c.target))]))
	t.step[0], t.cycle = time.Since(start), time.Since(start)
	return t, err
}

// impersonate switches the client to a target, for -mode page, and opens
// the landing page, which shows the switch's message once.
func (c *client) impersonate(ctx context.Context) error {
	id := strconv.Itoa(c.target[c.rng.IntN(len(c.target))])
	token, err := c.openUserPage(ctx, id)
	if err != nil {
		return err
	}
	landing, err := c.switchTo(ctx, id, token)
	if err != nil {
		return err
	}
	_, err = c.openLanding(ctx, landing)
	return err
}

// page is one request of -mode page: an impersonated page with the banner.
func (c *client) page(ctx context.Context) (timings, error) {
	var t timings
	start := time.Now()
	_, err := c.openLanding(ctx, "/")
	t.step[2], t.cycle = time.Since(start), time.Since(start)
	return t, err
}

// floorPath is the static file of -mode floor.
const floorPath = "/static/favicon.svg"

// floor is one request of -mode floor: a static file, without a session.
func (c *client) floor(ctx context.Context) (timings, error) {
	var t timings
	start := time.Now()
	r, err := c.do(ctx, http.MethodGet, floorPath, nil)
	if err != nil {
		return t, err
	}
	if r.status != http.StatusOK {
		return t, fail("GET %s: status %d", floorPath, r.status)
	}
	t.step[0], t.cycle = time.Since(start), time.Since(start)
	return t, nil
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on
// Linux.
const clockTicks = 100

// processCPU returns the user and system CPU time the processes have used,
// from /proc/PID/stat (fields 14 and 15, every thread included).
func processCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, fmt.Errorf("-pid %d: %w", pid, err)
		}
		// The command name, field 2, is in parentheses and may hold spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		fields := strings.Fields(rest) // fields[0] is field 3 of the file
		if len(fields) < 13 {
			return 0, fmt.Errorf("-pid %d: /proc/%d/stat is too short", pid, pid)
		}
		for _, f := range fields[11:13] {
			ticks, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("-pid %d: /proc/%d/stat: %w", pid, pid, err)
			}
			total += time.Duration(ticks) * time.Second / clockTicks
		}
	}
	return total, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func (r *report) print(w io.Writer, cfg config) {
	unit, perUnit := "cycles", 6
	if cfg.mode != modeCycle {
		unit, perUnit = "requests", 1
	}
	fmt.Fprintf(w, "target      %s (spread: %s, mode: %s)\n", strings.Join(cfg.urls, ", "), cfg.spread, cfg.mode)
	fmt.Fprintf(w, "clients     %d, actors %s, %d targets\n", cfg.clients, strings.Join(cfg.actors, ","), len(cfg.targets()))
	fmt.Fprintf(w, "duration    %s\n", r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "%-11s %d ok, %d failed\n", unit, r.cycles, r.failed())
	fmt.Fprintf(w, "%-11s %.1f\n", unit+"/s", float64(r.cycles)/r.elapsed.Seconds())
	if cfg.mode == modeCycle {
		fmt.Fprintf(w, "requests/s  %.1f (6 per cycle)\n", 6*float64(r.cycles)/r.elapsed.Seconds())
	}
	if len(cfg.pids) > 0 && r.cycles > 0 {
		per := r.cpu / time.Duration(r.cycles)
		fmt.Fprintf(w, "server CPU  %s in all, %s per %s", r.cpu.Round(10*time.Millisecond), per.Round(time.Microsecond), strings.TrimSuffix(unit, "s"))
		if perUnit > 1 {
			fmt.Fprintf(w, ", %s per request", (per / time.Duration(perUnit)).Round(time.Microsecond))
		}
		fmt.Fprintln(w)
	}
	row := func(name string, d []time.Duration) {
		slices.Sort(d)
		fmt.Fprintf(w, "%-15s p50 %-9s p90 %-9s p99 %-9s max %s\n", name,
			percentile(d, .50).Round(10*time.Microsecond), percentile(d, .90).Round(10*time.Microsecond),
			percentile(d, .99).Round(10*time.Microsecond), percentile(d, 1).Round(10*time.Microsecond))
	}
	for i, name := range steps {
		if cfg.mode == modeFloor {
			name = "static file"
		}
		if len(r.steps[i]) > 0 {
			row(name, r.steps[i])
		}
	}
	if cfg.mode == modeCycle {
		row("cycle", r.whole)
	}
	if len(r.errors) > 0 {
		fmt.Fprintln(w, "errors:")
		causes := make([]string, 0, len(r.errors))
		for k := range r.errors {
			causes = append(causes, k)
		}
		slices.Sort(causes)
		for _, k := range causes {
			fmt.Fprintf(w, "  %6d  %s\n", r.errors[k], k)
		}
	}
}
