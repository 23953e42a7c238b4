package binding

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchIndex builds an index of n bindings the way a busy gateway sees them:
// spread over up to 1,000 accounts, each account with two account-wide
// bindings and otherwise per-queue, per-recipient and per-session ones. It
// returns event subjects that each match a handful of those bindings, so the
// benchmark measures the cost of the non-matching bindings, which must not
// grow with n.
func benchIndex(n int) (*Index[int], []string) {
	accounts := min(1000, max(1, n/10))
	perAccount := n / accounts
	rng := rand.New(rand.NewPCG(1, 2))
	ix := NewIndex[int]()
	var subjects []string
	families := []string{"queue", "recipient", "session"}
	names := []string{"join", "ready", "create"}
	id := 0
	for a := range accounts {
		account := fmt.Sprintf("%032x", rng.Uint64())
		ix.Add(MustParse("qubicle.queue."+account+".*"), id)
		ix.Add(MustParse("qubicle.*."+account), id+1)
		id += 2
		for e := 2; e < perAccount; e++ {
			f := e % 3
			entity := fmt.Sprintf("E%d", e)
			b := fmt.Sprintf("qubicle.%s.%s.%s", families[f], account, entity)
			if e%5 == 0 { // some clients narrow to one event name
				b += "." + names[f]
			}
			ix.Add(MustParse(b), id)
			id++
			if len(subjects) < 4096 && (e+a)%4 == 0 {
				subjects = append(subjects, fmt.Sprintf("qubicle.%s.%s.%s.%s", families[f], account, entity, names[f]))
			}
		}
	}
	rng.Shuffle(len(subjects), func(i, j int) { subjects[i], subjects[j] = subjects[j], subjects[i] })
	return ix, subjects
}

func BenchmarkIndexMatch(b *testing.B) {
	for _, n := range []int{100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			ix, subjects := benchIndex(n)
			dst := make([]int, 0, 64)
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				dst = ix.Match(subjects[i%len(subjects)], dst[:0])
				matched += len(dst)
			}
			b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
		})
	}
}

func BenchmarkIndexMatchParallel(b *testing.B) {
	ix, subjects := benchIndex(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]int, 0, 64)
		for i := 0; pb.Next(); i++ {
			dst = ix.Match(subjects[i%len(subjects)], dst[:0])
		}
	})
}

func BenchmarkParse(b *testing.B) {
	in := []string{
		"qubicle.queue." + acc + ".*",
		"qubicle.session." + acc + ".0c1e9b8d7a6f5e4d3c2b1a0987654f2a",
		"qubicle.recipient." + acc + ".R1.wrapup_start",
		"qubicle.*." + acc + ".#.delete",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Parse(in[i%len(in)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckName is what a subscribe pays to check a named binding's
// event name against the catalogue (once per binding, not per event).
func BenchmarkCheckName(b *testing.B) {
	bds := []Binding{
		MustParse("qubicle.recipient." + acc + ".R1.wrapup_start"),
		MustParse("qubicle.*." + acc + ".#.delete"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := bds[i%len(bds)].CheckName(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatches(b *testing.B) {
	bd := MustParse("qubicle.queue." + acc + ".#.join")
	subject := "qubicle.queue." + acc + ".Q1.join"
	b.ReportAllocs()
	for b.Loop() {
		if !bd.Matches(subject) {
			b.Fatal("no match")
		}
	}
}
