package binding

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

type pair struct {
	b Binding
	v int
}

func (p pair) String() string { return fmt.Sprintf("%s=%d", p.b, p.v) }

// bruteMatch is the reference the Index must agree with: every registered
// pair whose binding Matches the subject, exactly once.
func bruteMatch(pairs map[pair]bool, subject string) []int {
	var out []int
	for p := range pairs {
		if p.b.Matches(subject) {
			out = append(out, p.v)
		}
	}
	slices.Sort(out)
	return out
}

func sortedMatch(ix *Index[int], subject string) []int {
	got := ix.Match(subject, nil)
	slices.Sort(got)
	return got
}

var (
	genAccount = rapid.SampledFrom([]string{acc, other})
	genFamily  = rapid.SampledFrom([]string{"queue", "recipient", "session", "*"})
	genTail    = rapid.SampledFrom([]string{"Q1", "Q2", "join", "*", "#"})
	genToken   = rapid.SampledFrom([]string{"queue", "session", acc, other, "Q1", "Q2", "join", "", "qubicle"})
)

func genBinding(t *rapid.T) Binding {
	segs := []string{"qubicle", genFamily.Draw(t, "family"), genAccount.Draw(t, "account")}
	n := rapid.IntRange(0, 2).Draw(t, "extra")
	for range n {
		segs = append(segs, genTail.Draw(t, "tail"))
	}
	return MustParse(strings.Join(segs, "."))
}

func genSubject(t *rapid.T) string {
	if rapid.IntRange(0, 9).Draw(t, "kind") == 0 { // now and then, not an event subject at all
		toks := rapid.SliceOfN(genToken, 0, 7).Draw(t, "tokens")
		return strings.Join(toks, ".")
	}
	toks := []string{"qubicle", rapid.SampledFrom([]string{"queue", "recipient", "session"}).Draw(t, "family"), genAccount.Draw(t, "account")}
	toks = append(toks, rapid.SliceOfN(genToken, 0, 4).Draw(t, "rest")...)
	return strings.Join(toks, ".")
}

// TestIndexAgreesWithMatches drives random Add/Remove sequences and checks
// every Match against brute force over Binding.Matches, as a multiset: each
// matching (binding, value) pair is reported exactly once.
func TestIndexAgreesWithMatches(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ix := NewIndex[int]()
		model := map[pair]bool{}
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			b := genBinding(t)
			v := rapid.IntRange(0, 4).Draw(t, "value")
			p := pair{b, v}
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1:
				if got, want := ix.Add(b, v), !model[p]; got != want {
					t.Fatalf("Add(%q, %d) = %v, want %v", b, v, got, want)
				}
				model[p] = true
			case 2:
				if got, want := ix.Remove(b, v), model[p]; got != want {
					t.Fatalf("Remove(%q, %d) = %v, want %v", b, v, got, want)
				}
				delete(model, p)
			case 3:
				subject := genSubject(t)
				if got, want := sortedMatch(ix, subject), bruteMatch(model, subject); !slices.Equal(got, want) {
					t.Fatalf("Match(%q) = %v, want %v (registered: %v)", subject, got, want, slices.Collect(maps.Keys(model)))
				}
			}
			if ix.Len() != len(model) {
				t.Fatalf("Len() = %d, want %d", ix.Len(), len(model))
			}
		}
		for p := range model { // removing everything leaves an empty trie
			ix.Remove(p.b, p.v)
		}
		if !ix.root.empty() {
			t.Fatalf("index not pruned after removing everything: %+v", ix.root)
		}
	})
}

func TestIndexAddReportsDuplicates(t *testing.T) {
	ix := NewIndex[string]()
	b := MustParse("qubicle.queue." + acc + ".*")
	if !ix.Add(b, "c1") {
		t.Fatal("first Add returned false")
	}
	if ix.Add(b, "c1") {
		t.Error("second Add of the same pair returned true")
	}
	if !ix.Add(b, "c2") {
		t.Error("Add of another value under the same binding returned false")
	}
	if !ix.Add(MustParse("qubicle.queue."+acc), "c1") {
		t.Error("Add of the same value under another binding returned false")
	}
	if ix.Len() != 3 {
		t.Errorf("Len() = %d, want 3", ix.Len())
	}
	got := ix.Match("qubicle.queue."+acc+".Q1.join", nil)
	slices.Sort(got)
	if want := []string{"c1", "c1", "c2"}; !slices.Equal(got, want) {
		t.Errorf("Match = %v, want %v (c1 once per matching binding)", got, want)
	}
}

func TestIndexRemove(t *testing.T) {
	ix := NewIndex[string]()
	b := MustParse("qubicle.session." + acc + ".S1")
	subject := "qubicle.session." + acc + ".S1.create"
	if ix.Remove(b, "c1") {
		t.Error("Remove from an empty index returned true")
	}
	ix.Add(b, "c1")
	ix.Add(b, "c2")
	if ix.Remove(b, "c3") {
		t.Error("Remove of an absent value returned true")
	}
	if ix.Remove(MustParse("qubicle.session."+acc+".S2"), "c1") {
		t.Error("Remove under an absent binding returned true")
	}
	if !ix.Remove(b, "c1") {
		t.Error("Remove of a present pair returned false")
	}
	if ix.Remove(b, "c1") {
		t.Error("second Remove of the same pair returned true")
	}
	if got := ix.Match(subject, nil); !slices.Equal(got, []string{"c2"}) {
		t.Errorf("Match after Remove = %v, want [c2]", got)
	}
	ix.Remove(b, "c2")
	if got := ix.Match(subject, nil); len(got) != 0 {
		t.Errorf("Match after removing all = %v, want none", got)
	}
	if !ix.root.empty() || ix.Len() != 0 {
		t.Errorf("index not empty after removing every pair: Len=%d", ix.Len())
	}
}

func TestIndexRefusesZeroBinding(t *testing.T) {
	ix := NewIndex[int]()
	if ix.Add(Binding{}, 1) {
		t.Error("Add of the zero Binding returned true")
	}
	if ix.Remove(Binding{}, 1) {
		t.Error("Remove of the zero Binding returned true")
	}
	if got := ix.Match("", nil); len(got) != 0 {
		t.Errorf("Match(\"\") = %v", got)
	}
}

// TestIndexManySubscribersOfOneBinding crosses the size at which a node
// indexes its values, in both directions.
func TestIndexManySubscribersOfOneBinding(t *testing.T) {
	ix := NewIndex[int]()
	b := MustParse("qubicle.queue." + acc + ".*")
	subject := "qubicle.queue." + acc + ".Q1.join"
	const n = 100
	for i := range n {
		if !ix.Add(b, i) {
			t.Fatalf("Add(%d) = false", i)
		}
	}
	for i := range n {
		if ix.Add(b, i) {
			t.Fatalf("duplicate Add(%d) = true", i)
		}
	}
	for i := 0; i < n; i += 2 {
		if !ix.Remove(b, i) {
			t.Fatalf("Remove(%d) = false", i)
		}
	}
	var want []int
	for i := 1; i < n; i += 2 {
		want = append(want, i)
	}
	if got := sortedMatch(ix, subject); !slices.Equal(got, want) {
		t.Fatalf("Match = %v, want %v", got, want)
	}
	for i := 1; i < n-4; i += 2 { // down to a few values, below the indexed size
		ix.Remove(b, i)
	}
	if got := sortedMatch(ix, subject); !slices.Equal(got, []int{97, 99}) {
		t.Fatalf("Match = %v, want [97 99]", got)
	}
	if ix.Add(b, 97) || !ix.Remove(b, 97) || ix.Remove(b, 97) {
		t.Error("duplicate detection broken after shrinking")
	}
}

func TestIndexMatchDoesNotAllocate(t *testing.T) {
	ix := NewIndex[int]()
	ix.Add(MustParse("qubicle.queue."+acc), 1)
	ix.Add(MustParse("qubicle.queue."+acc+".*"), 2)
	ix.Add(MustParse("qubicle.queue."+acc+".#.join"), 3)
	ix.Add(MustParse("qubicle.*."+acc+".Q1"), 4)
	ix.Add(MustParse("qubicle.queue."+other), 5)
	subject := "qubicle.queue." + acc + ".Q1.join"
	dst := make([]int, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		if got := ix.Match(subject, dst[:0]); len(got) != 4 {
			t.Fatalf("Match = %v, want 4 values", got)
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call", allocs)
	}
}

// TestIndexConcurrentUse runs Add, Remove and Match together; run with -race.
// A binding registered before the churn starts must be found by every Match.
func TestIndexConcurrentUse(t *testing.T) {
	ix := NewIndex[int]()
	stable := MustParse("qubicle.queue." + acc)
	ix.Add(stable, -1)
	subject := "qubicle.queue." + acc + ".Q1.join"
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				b := MustParse(fmt.Sprintf("qubicle.queue.%s.Q%d", acc, i%7))
				ix.Add(b, w)
				ix.Remove(b, w)
			}
		})
	}
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			dst := make([]int, 0, 16)
			for range 500 {
				dst = ix.Match(subject, dst[:0])
				if !slices.Contains(dst, -1) {
					errs <- fmt.Sprintf("stable subscriber missing from %v", dst)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if ix.Len() != 1 {
		t.Errorf("Len() = %d after balanced churn, want 1", ix.Len())
	}
}
