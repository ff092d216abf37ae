package redisstore

import (
	"testing"
	"time"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/redisstore/redistest"
)

// BenchmarkEntry measures the call the plugin makes on every impersonated
// request: one HMGET over a loopback connection.
func BenchmarkEntry(b *testing.B) {
	s, e := benchStore(b)
	for b.Loop() {
		if _, err := s.Entry(ctx, e.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntryParallel is BenchmarkEntry from GOMAXPROCS goroutines, as
// concurrent requests call it.
func BenchmarkEntryParallel(b *testing.B) {
	s, e := benchStore(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Entry(ctx, e.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkStartEnd measures an impersonation's writes: Start, then End by
// ID.
func BenchmarkStartEnd(b *testing.B) {
	s, _ := benchStore(b)
	now := time.Now()
	for b.Loop() {
		e := entry(now)
		if err := s.Start(ctx, e); err != nil {
			b.Fatal(err)
		}
		if _, err := s.End(ctx, loginas.Selector{ID: e.ID}, loginas.CauseLogout, now); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStore(b *testing.B) (*Store, loginas.Entry) {
	b.Helper()
	srv := redistest.Start(b)
	s := New(newClient(b, srv), Options{})
	e := entry(time.Now())
	mustStart(b, s, e)
	return s, e
}
