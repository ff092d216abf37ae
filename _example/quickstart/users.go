package main

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// User is the app's own model, shaped like a GORM model: a uint primary key.
type User struct {
	ID           uint
	Email        string
	Name         string
	IsAdmin      bool
	Active       bool
	PasswordHash []byte // bcrypt
}

// Users stands in for the database: a map guarded by a mutex.
type Users struct {
	mu   sync.RWMutex
	byID map[uint]User
}

// seedUsers makes the demo's users; each one's password is the first part of
// the e-mail address ("admin" for admin@example.com). Passwords are hashed with
// bcrypt at its minimum cost so that the demo and its tests stay fast; a real
// app uses bcrypt.DefaultCost or more.
func seedUsers() *Users {
	us := &Users{byID: map[uint]User{}}
	for _, u := range []User{
		{ID: 1, Email: "admin@example.com", Name: "Ada Admin", IsAdmin: true, Active: true},
		{ID: 2, Email: "root@example.com", Name: "Rudi Root", IsAdmin: true, Active: true},
		{ID: 3, Email: "alice@example.com", Name: "alice", Active: true},
		{ID: 4, Email: "bob@example.com", Name: "bob", Active: true},
		{ID: 5, Email: "carol@example.com", Name: "carol (disabled)", Active: false},
	} {
		password, _, _ := strings.Cut(u.Email, "@")
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		u.PasswordHash = hash
		us.byID[u.ID] = u
	}
	return us
}

// Find returns the user with the given ID.
func (us *Users) Find(id uint) (User, bool) {
	us.mu.RLock()
	defer us.mu.RUnlock()
	u, ok := us.byID[id]
	return u, ok
}

// All returns every user, ordered by ID.
func (us *Users) All() []User {
	us.mu.RLock()
	defer us.mu.RUnlock()
	all := slices.Collect(maps.Values(us.byID))
	slices.SortFunc(all, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

// Authenticate returns the active user with this e-mail address and password.
func (us *Users) Authenticate(email, password string) (User, bool) {
	us.mu.RLock()
	defer us.mu.RUnlock()
	for _, u := range us.byID {
		if strings.EqualFold(u.Email, email) {
			err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password))
			return u, err == nil && u.Active
		}
	}
	return User{}, false
}
