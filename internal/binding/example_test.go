package binding_test

import (
	"fmt"
	"slices"

	"github.com/ccevents/ccevents/internal/binding"
)

func ExampleParse() {
	b, err := binding.Parse("qubicle.queue.4f2a0c1e9b8d7a6f5e4d3c2b1a098765.*")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Family(), b.Account())
	fmt.Println(b.BusFilter())
	fmt.Println(b.Matches("qubicle.queue.4f2a0c1e9b8d7a6f5e4d3c2b1a098765.Q1.join"))

	_, err = binding.Parse("qubicle.queue.*.Q1")
	fmt.Println(err)
	// Output:
	// queue 4f2a0c1e9b8d7a6f5e4d3c2b1a098765
	// qubicle.queue.4f2a0c1e9b8d7a6f5e4d3c2b1a098765.*.>
	// true
	// binding "qubicle.queue.*.Q1": the account segment must be a literal account id, got "*"
}

func ExampleIndex() {
	const acc = "4f2a0c1e9b8d7a6f5e4d3c2b1a098765"
	ix := binding.NewIndex[string]()
	ix.Add(binding.MustParse("qubicle.queue."+acc+".*"), "wallboard")
	ix.Add(binding.MustParse("qubicle.session."+acc+".S1"), "agent desktop")
	ix.Add(binding.MustParse("qubicle.*."+acc+".#.delete"), "auditor")

	dst := make([]string, 0, 8) // reuse dst across events: Match then never allocates
	for _, subject := range []string{
		"qubicle.queue." + acc + ".Q1.join",
		"qubicle.session." + acc + ".S1.delete",
	} {
		dst = ix.Match(subject, dst[:0])
		slices.Sort(dst) // Match returns values in no particular order
		fmt.Println(dst)
	}
	// Output:
	// [wallboard]
	// [agent desktop auditor]
}
