package main

import (
	"fmt"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-contrib/sessions/memstore"
	"github.com/gin-contrib/sessions/redis"
)

// NewSessionStore makes the gin-contrib/sessions store the app runs on:
// "cookie" (the whole session in a signed, encrypted cookie), "memstore" (in
// this process) or "redis" (at redisAddr). hashKey signs the cookie, blockKey
// (16, 24 or 32 bytes) encrypts it. secure sets the cookie's Secure flag:
// leave it off only for plain HTTP on 127.0.0.1.
func NewSessionStore(kind, redisAddr string, hashKey, blockKey []byte, secure bool) (sessions.Store, error) {
	var store sessions.Store
	switch kind {
	case "cookie":
		store = cookie.NewStore(hashKey, blockKey)
	case "memstore":
		store = memstore.NewStore(hashKey, blockKey)
	case "redis":
		s, err := redis.NewStore(10, "tcp", redisAddr, "", "", hashKey, blockKey)
		if err != nil {
			return nil, fmt.Errorf("redis sessions at %s: %w", redisAddr, err)
		}
		store = s
	default:
		return nil, fmt.Errorf("unknown session store %q: want cookie, memstore or redis", kind)
	}
	store.Options(sessions.Options{
		Path:     "/",
		MaxAge:   7 * 24 * 3600,
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return store, nil
}
