// Command example is a small admin app that shows loginas at work: a
// superuser logs in as another user from the user's admin page, sees the app
// as that user with a banner on every page, and returns with one click.
// Users and the audit trail live in SQLite or PostgreSQL; sessions live in a
// signed cookie or in Redis.
//
// Run it with:
//
//	go run .
//
// and open http://127.0.0.1:8080/login (admin/admin). See README.md for the
// flags and the pages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
)

func main() {
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line into a config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	var secret string
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&cfg.DBPath, "db", "", "SQLite database file, created and seeded when empty (default: a fresh database in memory)")
	fs.StringVar(&cfg.DatabaseURL, "database", "", "PostgreSQL URL, such as postgres://app@127.0.0.1:5432/app, instead of SQLite")
	fs.StringVar(&cfg.RedisAddr, "redis", "", "Redis host:port: keep sessions, and the plugin's impersonations, in Redis instead of a signed cookie and the database")
	fs.StringVar(&secret, "secret", "", "secret for cookies and impersonation records, shared by all instances behind one Redis (default: random, with a warning)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", time.Hour, "impersonation time limit, such as 90s or 2h")
	fs.IntVar(&cfg.SeedUsers, "seed-users", 0, "make N extra regular users user0001..userNNNN, each with their name as password")
	fs.IntVar(&cfg.SeedAudit, "seed-audit", 0, "write N synthetic audit events at start, spread over the seeded users, for growth measurements")
	fs.BoolVar(&cfg.ReadOnly, "read-only", false, "read-only impersonation: refuse every change (POST, …) from an impersonated session, except the return")
	fs.BoolVar(&cfg.RequireConsent, "require-consent", false, "a switch needs the target's live grant, given on their Account access page")
	fs.DurationVar(&cfg.EntryCache, "entry-cache", 0, "reuse a live impersonation read from the database or Redis for this long (at most 10s); an end made on another instance is seen within it")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if secret == "" {
		cfg.Secret = randomBytes(32)
		fmt.Fprintln(stderr, "warning: no -secret given, using a random one: sessions end when the app stops, "+
			"and instances behind one Redis must all be given the same -secret")
	} else {
		cfg.Secret = []byte(secret)
		if len(secret) < 32 {
			fmt.Fprintln(stderr, "warning: -secret is shorter than 32 characters; use a long random value outside of a demo")
		}
	}
	return cfg, nil
}

// run starts the app and serves until ctx is done (main cancels it on
// SIGINT or SIGTERM), then shuts the server down.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))

	router, app, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = app.Close() }()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	printStart(stdout, app, ln.Addr().String())

	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// printStart tells the person at the terminal where the app is and how to
// sign in. The last line, "listening on http://…", means the app is ready.
func printStart(w io.Writer, app *App, addr string) {
	store := "a signed cookie"
	if app.cfg.RedisAddr != "" {
		store = "Redis at " + app.cfg.RedisAddr
	}
	db := "SQLite in memory"
	switch {
	case app.cfg.DatabaseURL != "":
		db = "PostgreSQL"
	case app.cfg.DBPath != "":
		db = app.cfg.DBPath
	}
	if app.seeded && (app.cfg.DatabaseURL != "" || app.cfg.DBPath != "") {
		db += " (seeded now)"
	}
	mode := ""
	if app.cfg.ReadOnly {
		mode += " (read-only)"
	}
	if app.cfg.RequireConsent {
		mode += " (consent required)"
	}
	if app.cfg.EntryCache > 0 {
		mode += fmt.Sprintf(" (impersonations cached for %s)", app.cfg.EntryCache)
	}
	fmt.Fprintf(w, "loginas example: database %s, sessions in %s, impersonation limit %s%s\n", db, store, app.cfg.MaxDuration, mode)
	fmt.Fprintln(w, "users (username / password):")
	for _, u := range seedUsers {
		role := "regular user"
		switch {
		case u.superuser:
			role = "superuser"
		case u.staff:
			role = "staff, not superuser"
		}
		if !u.active {
			role += ", disabled"
		}
		fmt.Fprintf(w, "  %-8s / %-8s %s\n", u.name, u.name, role)
	}
	if n := app.cfg.SeedUsers; n > 0 {
		fmt.Fprintf(w, "  %s..%s / same as the name, %d regular users (IDs %d..%d)\n",
			loadUserName(1), loadUserName(n), n, len(seedUsers)+1, len(seedUsers)+n)
	}
	fmt.Fprintf(w, "listening on http://%s\n", addr)
}
