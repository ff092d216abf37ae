package redisstore_test

import (
	"context"
	"log"
	"os"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/redisstore"
	"github.com/redis/go-redis/v9"
)

// Several instances of an app share their impersonations through Redis.
// The history that people read about the use of their account lives
// elsewhere: here a History such as the sqlstore module's.
func Example() {
	var (
		findUser func(ctx context.Context, id string) (loginas.User, error) // the app's user lookup
		history  loginas.History                                            // such as an sqlstore.Store
	)
	client := redis.NewClient(&redis.Options{Addr: os.Getenv("REDIS_ADDR")})
	p, err := loginas.New(loginas.Options{
		FindUser:       findUser,
		SessionKey:     "user_id",
		Secret:         []byte(os.Getenv("LOGINAS_SECRET")),
		Store:          redisstore.New(client, redisstore.Options{}),
		History:        history,
		RequireConsent: true, // the grants are kept in Redis too
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = p
}
