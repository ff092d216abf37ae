package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// installHint is the message of a test that cannot find a tool it needs.
const installHint = "install it: apt-get install -y chromium"

// testSecret is the -secret given to every instance unless a test sets its own.
const testSecret = "e2e-secret-0123456789abcdef0123456789abcdef"

// Users seeded by the example, with their stable IDs.
const (
	adminID = "1"
	rootID  = "2"
	staffID = "3"
	aliceID = "4"
	bobID   = "5"
)

// builds is the temporary directory of the binaries the tests build, and
// of the seeded database template.
var builds struct {
	once sync.Once
	dir  string
	err  error
}

// binary is a program of the _example module, built once per test run.
type binary struct {
	pkg  string // package path relative to the module
	name string // of the binary file
	once sync.Once
	path string
	err  error
}

var (
	example  = &binary{pkg: ".", name: "example"}
	loadTool = &binary{pkg: "./cmd/load", name: "load"}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// buildDir returns the run's temporary directory, made at the first call.
func buildDir(t testing.TB) string {
	t.Helper()
	builds.once.Do(func() { builds.dir, builds.err = os.MkdirTemp("", "loginas-e2e-") })
	if builds.err != nil {
		t.Fatalf("making the build directory: %v", builds.err)
	}
	return builds.dir
}

// build builds b once per test run and returns the path of the binary.
// Under -race the binary gets the race detector too.
func (b *binary) build(t testing.TB) string {
	t.Helper()
	dir := buildDir(t)
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("the go tool is not on PATH: %w", err)
			return
		}
		path := filepath.Join(dir, b.name)
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, b.pkg)...)
		cmd.Dir = ".." // the _example module
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s %s: %w\n%s", strings.Join(args, " "), b.pkg, err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		t.Fatalf("building %s: %v", b.pkg, b.err)
	}
	return b.path
}

// exampleBinary returns the path of the example app's binary.
func exampleBinary(t testing.TB) string {
	t.Helper()
	return example.build(t)
}

// requireTool finds a program on PATH. A missing one fails the test under
// CI=true and skips it otherwise.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (%v): %s", name, err, installHint)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("closing the port probe: %v", err)
	}
	return port
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

// proc is a child process in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // result of Wait, valid after done
}

func startProc(t testing.TB, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL if it is still there
// after a grace period. It waits for the process to exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	t.Errorf("%s did not stop on SIGTERM within 10s; killing it", p.name)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// app is a running instance of the example.
type app struct {
	name string
	URL  string // http://127.0.0.1:port
	proc *proc
}

// appConfig holds the flags of one instance; empty fields are left out,
// except the database and Secret (testSecret). Without Database (a
// PostgreSQL URL) or DB (an SQLite file), the instance gets a fresh copy of
// a seeded SQLite database.
type appConfig struct {
	DB          string
	Database    string
	Redis       string
	Secret      string
	MaxDuration string
	Extra       []string
}

func (cfg appConfig) args(t testing.TB, addr string) []string {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	args := []string{"-addr", addr, "-secret", cfg.Secret}
	switch {
	case cfg.Database != "":
		args = append(args, "-database", cfg.Database)
	case cfg.DB != "":
		args = append(args, "-db", cfg.DB)
	default:
		args = append(args, "-db", seededDB(t))
	}
	if cfg.Redis != "" {
		args = append(args, "-redis", cfg.Redis)
	}
	if cfg.MaxDuration != "" {
		args = append(args, "-max-duration", cfg.MaxDuration)
	}
	return append(args, cfg.Extra...)
}

// readyTimeout bounds the start of an instance. Seeding hashes six
// passwords with bcrypt's default cost, which takes seconds under -race.
const readyTimeout = 90 * time.Second

var seedTemplate struct {
	once sync.Once
	path string
	err  error
}

// seededDB returns a fresh copy of an SQLite database the example has
// seeded, in a temporary directory of t. The template is made once per
// run, so that each instance does not hash the six passwords again.
func seededDB(t testing.TB) string {
	t.Helper()
	bin := exampleBinary(t)
	seedTemplate.once.Do(func() {
		path := filepath.Join(buildDir(t), "seeded.db")
		p := startProc(t, "seeding example", bin, "-addr", "127.0.0.1:0", "-db", path, "-secret", testSecret)
		deadline := time.Now().Add(readyTimeout)
		for !strings.Contains(p.out.String(), "listening on http://") {
			if p.exited() || time.Now().After(deadline) {
				p.stop(t)
				seedTemplate.err = fmt.Errorf("the example did not seed %s within %s (%v):\n%s", path, readyTimeout, p.err, tail(p.out.String(), 4000))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.stop(t)
		if !p.cmd.ProcessState.Success() {
			seedTemplate.err = fmt.Errorf("the seeding example did not stop cleanly (%v):\n%s", p.err, tail(p.out.String(), 4000))
			return
		}
		seedTemplate.path = path
	})
	if seedTemplate.err != nil {
		t.Fatal(seedTemplate.err)
	}
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(seedTemplate.path + suffix)
		if suffix != "" && os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "example.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "example.db")
}

// startApp starts an instance on a free loopback port and waits until GET
// /login answers 200. It is stopped when the test ends; its output is logged
// if the test failed, and a data race it reports fails the test.
func startApp(t testing.TB, name string, cfg appConfig) *app {
	t.Helper()
	return startApps(t, map[string]appConfig{name: cfg})[name]
}

// startApps starts several instances at once (their seeding runs in
// parallel) and waits until each one answers, like startApp.
func startApps(t testing.TB, cfgs map[string]appConfig) map[string]*app {
	t.Helper()
	bin := exampleBinary(t)
	apps := map[string]*app{}
	for name, cfg := range cfgs {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		a := &app{name: name, URL: "http://" + addr}
		a.proc = startProc(t, name, bin, cfg.args(t, addr)...)
		apps[name] = a
		t.Cleanup(func() {
			a.proc.stop(t)
			out := a.proc.out.String()
			if strings.Contains(out, "WARNING: DATA RACE") {
				t.Errorf("%s reported a data race:\n%s", name, out)
			} else if t.Failed() {
				t.Logf("output of %s:\n%s", name, tail(out, 8000))
			}
		})
	}
	for _, a := range apps {
		a.waitReady(t)
	}
	return apps
}

// waitReady polls GET /login until it answers 200.
func (a *app) waitReady(t testing.TB) {
	t.Helper()
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		res, err := probe.Get(a.URL + "/login")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("GET /login: %s", res.Status)
		}
		if a.proc.exited() {
			t.Fatalf("%s exited before answering (%v):\n%s", a.name, a.proc.err, tail(a.proc.out.String(), 8000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer GET /login within %s: %v", a.name, readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// client is a plain HTTP client with a cookie jar, like one browser profile.
// Cookies are not port-specific, so one client can talk to several
// instances on 127.0.0.1 with the same cookies.
type client struct {
	t      testing.TB
	jar    *cookiejar.Jar
	plain  *http.Client // does not follow redirects
	follow *http.Client // follows redirects
}

func newClient(t testing.TB) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{
		t:   t,
		jar: jar,
		plain: &http.Client{Jar: jar, Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		follow: &http.Client{Jar: jar, Timeout: 15 * time.Second},
	}
}

// response is an HTTP answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   string
	URL    string // of the last request, after redirects
}

func (c *client) do(hc *http.Client, method, rawURL string, form url.Values, header http.Header) (*response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// What a browser sends with a form post of this site.
		req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
		req.Header.Set("Referer", rawURL)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: string(b), URL: res.Request.URL.String()}, nil
}

// get fetches a page, following redirects.
func (c *client) get(rawURL string) *response {
	c.t.Helper()
	res, err := c.do(c.follow, http.MethodGet, rawURL, nil, nil)
	if err != nil {
		c.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return res
}

// post sends a form like a browser of this site does, without following
// the redirect it answers with.
func (c *client) post(rawURL string, form url.Values) *response {
	c.t.Helper()
	res, err := c.do(c.plain, http.MethodPost, rawURL, form, nil)
	if err != nil {
		c.t.Fatalf("POST %s: %v", rawURL, err)
	}
	return res
}

// cookies returns the cookies the client would send to base.
func (c *client) cookies(base string) []*http.Cookie {
	c.t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.jar.Cookies(u)
}

// withCookies returns a fresh client holding only the given cookies for base.
func withCookies(t testing.TB, base string, cookies []*http.Cookie) *client {
	t.Helper()
	c := newClient(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c.jar.SetCookies(u, cookies)
	return c
}

// login signs in through the login form and checks /me.
func (c *client) login(base, username, password string) {
	c.t.Helper()
	page := c.get(base + "/login")
	form, ok := findForm(page.Body, func(f htmlForm) bool { _, ok := f.Fields["password"]; return ok })
	if !ok {
		c.t.Fatalf("GET /login has no form with a password field:\n%s", page.Body)
	}
	form.Fields.Set("username", username)
	form.Fields.Set("password", password)
	res := c.post(resolve(base, form.Action, "/login"), form.Fields)
	if res.Status != http.StatusSeeOther && res.Status != http.StatusFound {
		c.t.Fatalf("POST /login as %s: status %d, want a redirect:\n%s", username, res.Status, res.Body)
	}
	if me := c.me(base); me.Username != username {
		c.t.Fatalf("after signing in as %s, /me says %+v", username, me)
	}
}

// meInfo is the answer of GET /me.
type meInfo struct {
	Status         int
	ID             string // "" for null
	Username       string
	IsImpersonated bool
	Impersonator   string // the impersonator's username, "" for none
}

func (c *client) me(base string) meInfo {
	c.t.Helper()
	res, err := c.do(c.plain, http.MethodGet, base+"/me", nil, http.Header{"Accept": {"application/json"}})
	if err != nil {
		c.t.Fatalf("GET /me: %v", err)
	}
	m, err := decodeMe(res.Status, res.Body)
	if err != nil {
		c.t.Fatalf("GET /me: %v", err)
	}
	return m
}

// decodeMe reads the JSON of /me. The impersonator may be given as a
// username or as an object with a username.
func decodeMe(status int, body string) (meInfo, error) {
	var raw struct {
		ID             json.RawMessage `json:"id"`
		Username       *string         `json:"username"`
		IsImpersonated *bool           `json:"is_impersonated"`
		Impersonator   json.RawMessage `json:"impersonator"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		return meInfo{}, fmt.Errorf("status %d, body is not JSON (%v): %q", status, err, tail(body, 500))
	}
	if raw.Username == nil || raw.IsImpersonated == nil {
		return meInfo{}, fmt.Errorf("status %d, username or is_impersonated missing: %s", status, body)
	}
	m := meInfo{Status: status, Username: *raw.Username, IsImpersonated: *raw.IsImpersonated}
	if id := string(raw.ID); id != "" && id != "null" {
		m.ID = strings.Trim(id, `"`)
	}
	if len(raw.Impersonator) > 0 && string(raw.Impersonator) != "null" {
		var name string
		if err := json.Unmarshal(raw.Impersonator, &name); err != nil {
			var obj struct {
				Username string `json:"username"`
			}
			if err := json.Unmarshal(raw.Impersonator, &obj); err != nil {
				return meInfo{}, fmt.Errorf("impersonator is neither a name nor an object: %s", raw.Impersonator)
			}
			name = obj.Username
		}
		m.Impersonator = name
	}
	return m, nil
}

// htmlForm is a form found in a page: its action and the named inputs with
// their values.
type htmlForm struct {
	Action string
	Class  string
	Fields url.Values
	HTML   string // what is between <form> and </form>
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe  = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3])
	}
	return m
}

// parseForms returns the forms of a page written by html/template.
func parseForms(page string) []htmlForm {
	var forms []htmlForm
	for _, f := range formRe.FindAllStringSubmatch(page, -1) {
		a := attrs(f[1])
		form := htmlForm{Action: a["action"], Class: a["class"], Fields: url.Values{}, HTML: f[2]}
		for _, in := range inputRe.FindAllStringSubmatch(f[2], -1) {
			ia := attrs(in[1])
			if name := ia["name"]; name != "" {
				form.Fields.Add(name, ia["value"])
			}
		}
		forms = append(forms, form)
	}
	return forms
}

func findForm(page string, match func(htmlForm) bool) (htmlForm, bool) {
	for _, f := range parseForms(page) {
		if match(f) {
			return f, true
		}
	}
	return htmlForm{}, false
}

// formWithAction finds the form posting to path.
func formWithAction(page, path string) (htmlForm, bool) {
	return findForm(page, func(f htmlForm) bool { return f.Action == path })
}

// resolve turns a form action into an absolute URL; an empty action posts
// to fallback.
func resolve(base, action, fallback string) string {
	if action == "" {
		action = fallback
	}
	if strings.HasPrefix(action, "http://") || strings.HasPrefix(action, "https://") {
		return action
	}
	return base + action
}

// switchTo opens the user page of id on base and posts its "Log in as user"
// form with a reason. It returns the answer, not following the redirect.
func (c *client) switchTo(base, id, reason string) *response {
	c.t.Helper()
	action := "/admin/loginas/" + id
	page := c.get(base + "/admin/users/" + id)
	if page.Status != http.StatusOK {
		c.t.Fatalf("GET /admin/users/%s: status %d", id, page.Status)
	}
	form, ok := formWithAction(page.Body, action)
	if !ok {
		c.t.Fatalf("GET /admin/users/%s has no form posting to %s:\n%s", id, action, page.Body)
	}
	if form.Fields.Get("loginas_csrf") == "" {
		c.t.Fatalf("the form posting to %s has no loginas_csrf token: %s", action, form.HTML)
	}
	form.Fields.Set("reason", reason)
	return c.post(base+action, form.Fields)
}

// logoutForm finds the layout's logout form on a page of base.
func (c *client) logoutForm(base, path string) htmlForm {
	c.t.Helper()
	page := c.get(base + path)
	form, ok := formWithAction(page.Body, "/admin/loginas/logout")
	if !ok {
		c.t.Fatalf("GET %s (status %d) has no form posting to /admin/loginas/logout:\n%s", path, page.Status, page.Body)
	}
	return form
}

var (
	rowRe   = regexp.MustCompile(`(?is)<tr\b[^>]*>(.*?)</tr>`)
	tagRe   = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRe = regexp.MustCompile(`\s+`)
)

// textOf returns the text of an HTML fragment: tags dropped, entities
// decoded, white space collapsed.
func textOf(fragment string) string {
	text := html.UnescapeString(tagRe.ReplaceAllString(fragment, " "))
	return strings.TrimSpace(spaceRe.ReplaceAllString(text, " "))
}

// htmlRow is a row of a table of a page: its text and its forms.
type htmlRow struct {
	Text  string
	Forms []htmlForm
}

// tableRows returns the body rows of every table of a page (rows with
// header cells are left out), in order.
func tableRows(page string) []htmlRow {
	var rows []htmlRow
	for _, m := range rowRe.FindAllStringSubmatch(page, -1) {
		if strings.Contains(strings.ToLower(m[1]), "<th") {
			continue
		}
		rows = append(rows, htmlRow{Text: textOf(m[1]), Forms: parseForms(m[1])})
	}
	return rows
}

// rowWith returns the first row whose text has all of words.
func rowWith(rows []htmlRow, words ...string) (htmlRow, bool) {
	for _, r := range rows {
		if hasAll(r.Text, words...) {
			return r, true
		}
	}
	return htmlRow{}, false
}

func hasAll(text string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// htmlBlock is a <div> of a page with a given class: its text and forms.
type htmlBlock struct {
	Text  string
	Forms []htmlForm
}

// blocks returns the <div class="class"> elements of a page, such as the
// banner partial's loginas-in-use and loginas-notice. They must not hold
// another <div>.
func blocks(page, class string) []htmlBlock {
	re := regexp.MustCompile(`(?is)<div class="` + regexp.QuoteMeta(class) + `"[^>]*>(.*?)</div>`)
	var out []htmlBlock
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		out = append(out, htmlBlock{Text: textOf(m[1]), Forms: parseForms(m[1])})
	}
	return out
}
