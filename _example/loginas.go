package main

// Everything the app does to use loginas is in this file: the options, the
// user lookup, the audit sink, the stores, and the notifications.

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/redisstore"
	"github.com/redis/go-redis/v9"
)

// userIDKey is the session key under which the app keeps the signed-in
// user's ID, a decimal string; the plugin's Options.SessionKey.
const userIDKey = "user_id"

// registerPlugin mounts loginas on router with the app's options.
func (app *App) registerPlugin(router *gin.Engine) error {
	store, err := app.pluginStore()
	if err != nil {
		return err
	}
	app.plugin, err = loginas.Register(router, loginas.Options{
		FindUser:           app.findUser,
		SessionKey:         userIDKey,
		Secret:             deriveKey(app.cfg.Secret, "loginas"),
		MaxDuration:        app.cfg.MaxDuration,
		RedirectURL:        "/",
		LogoutRedirectURL:  "/",
		RefusalRedirectURL: "/admin/users",
		LoginURL:           "/login",
		// The database keeps the history, the notices and the audit trail.
		// The impersonations, and the consents with them, live in Redis
		// when the sessions do (the plugin takes Consents from the Store
		// first), so that every instance sees them.
		Store:          store,
		History:        app.db.Plugin,
		Audit:          app.recordEvent,
		Notify:         app.notify,
		EntryCache:     app.cfg.EntryCache,
		RequireConsent: app.cfg.RequireConsent,
		ReadOnly:       app.cfg.ReadOnly,
		Logger:         app.cfg.Logger,
		ErrorHandler:   app.errorHandler,
		Clock:          app.cfg.Clock,
	})
	return err
}

// pluginStore is where the impersonations live: redisstore beside Redis
// sessions, else the database through sqlstore.
func (app *App) pluginStore() (loginas.Store, error) {
	if app.cfg.RedisAddr == "" {
		return app.db.Plugin, nil
	}
	client := redis.NewClient(&redis.Options{Addr: app.cfg.RedisAddr})
	app.closers = append(app.closers, client.Close)
	if err := client.Ping(context.Background()).Err(); err != nil {
		return nil, fmt.Errorf("connecting to Redis at %s: %w", app.cfg.RedisAddr, err)
	}
	return redisstore.New(client, redisstore.Options{}), nil
}

// findUser is the plugin's Options.FindUser. The plugin passes the request's
// gin context: the signed-in user the app has already loaded is reused.
func (app *App) findUser(ctx context.Context, id string) (loginas.User, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return loginas.User{}, loginas.ErrUserNotFound
	}
	if c, ok := ctx.(*gin.Context); ok {
		if v, ok := viewerOf(c); ok && v.ID == n {
			return pluginUser(v), nil
		}
	}
	u, err := app.db.UserByID(ctx, n)
	if errors.Is(err, errNoUser) {
		return loginas.User{}, loginas.ErrUserNotFound
	}
	if err != nil {
		return loginas.User{}, err
	}
	return pluginUser(u), nil
}

// pluginUser is the app's user as the plugin sees it; Data carries the
// *User, so Current(c) gives it back without another query.
func pluginUser(u *User) loginas.User {
	return loginas.User{ID: u.IDString(), Name: u.Username, Superuser: u.IsSuperuser, Active: u.IsActive, Data: u}
}

// userOf returns the app's user that FindUser put in a plugin user.
func userOf(u loginas.User) *User {
	v, _ := u.Data.(*User)
	return v
}

// recordEvent is the plugin's Options.Audit: every event goes to the audit
// trail in the database, even when the client has gone away.
func (app *App) recordEvent(ctx context.Context, e loginas.Event) error {
	return app.db.Plugin.Audit(context.WithoutCancel(ctx), e)
}

// notify is the plugin's Options.Notify: the app would e-mail the person
// whose account was used; the example writes the message to its log.
func (app *App) notify(_ context.Context, e loginas.Entry) {
	what := "is signed in to your account"
	if !e.Ended.IsZero() {
		what = "was signed in to your account until " + e.Ended.UTC().Format("15:04 UTC") + " (" + string(e.Cause) + ")"
	}
	app.log.Info("notification", "to", e.TargetID, "text", e.ActorName+" "+what+". Reason: "+e.Reason)
}
