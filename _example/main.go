// Command example is a small admin app that shows loginas at work.
package main

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/gin-contrib/sessions/cookie"
	_ "github.com/gin-contrib/sessions/redis"
	_ "github.com/gin-loginas/loginas"
	_ "github.com/gomodule/redigo/redis"
	_ "golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite"
)

func main() {}
