// Command quickstart is a small Gin admin app with "Log in as user", written
// from the loginas README alone. Run it from its folder:
//
//	go run .                            # cookie sessions on http://127.0.0.1:8081
//	go run . -store memstore            # sessions in this process
//	go run . -redis 127.0.0.1:6379      # sessions in Redis
//
// Sign in as admin@example.com with the password "admin". LOGINAS_SECRET
// (32 bytes or more) and SESSION_SECRET keep sessions valid across restarts;
// without them the app makes random ones.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	store := flag.String("store", "cookie", "session store: cookie or memstore (see -redis)")
	redisAddr := flag.String("redis", "", "host:port: keep sessions in Redis instead")
	flag.Parse()

	secret := []byte(os.Getenv("LOGINAS_SECRET"))
	if len(secret) == 0 {
		log.Print("LOGINAS_SECRET is not set: using a random secret, a restart signs everyone out")
		secret = []byte(rand.Text() + rand.Text())
	}
	sessionSecret := os.Getenv("SESSION_SECRET")
	if sessionSecret == "" {
		sessionSecret = rand.Text()
	}
	hashKey := sha256.Sum256([]byte("hash:" + sessionSecret))
	blockKey := sha256.Sum256([]byte("block:" + sessionSecret))

	kind := *store
	if *redisAddr != "" {
		kind = "redis"
	}
	// Secure cookies are off: this demo serves plain HTTP on 127.0.0.1.
	sessionStore, err := NewSessionStore(kind, *redisAddr, hashKey[:], blockKey[:], false)
	if err != nil {
		log.Fatal(err)
	}
	app, err := New(Config{Store: sessionStore, Secret: secret, RequestLog: true})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%s sessions; listening on http://%s, sign in as admin@example.com / admin", kind, *addr)
	srv := &http.Server{Addr: *addr, Handler: app.Engine, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
