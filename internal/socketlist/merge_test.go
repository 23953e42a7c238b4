package socketlist

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

func ids(ss []Socket) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func sockets(idList ...string) []Socket {
	out := make([]Socket, len(idList))
	for i, id := range idList {
		out[i] = Socket{ID: id}
	}
	return out
}

func TestMergePagesAcrossGatewaysWithoutSkipping(t *testing.T) {
	tests := []struct {
		name     string
		answers  []Answer
		limit    int
		want     []string
		wantNext string
	}{
		{"interleaved, all fit", []Answer{{Gateway: "b", Sockets: sockets("02", "04")}, {Gateway: "a", Sockets: sockets("01", "03")}},
			10, []string{"01", "02", "03", "04"}, ""},
		{"over the limit", []Answer{{Gateway: "a", Sockets: sockets("01", "03")}, {Gateway: "b", Sockets: sockets("02", "04")}},
			3, []string{"01", "02", "03"}, "03"},
		// b had more after 02: its next may sort before a's 03, so the
		// page stops at 02 and the next one starts after it.
		{"a gateway that had more bounds the page", []Answer{{Gateway: "a", Sockets: sockets("01", "03", "05")}, {Gateway: "b", Sockets: sockets("02"), More: true}},
			10, []string{"01", "02"}, "02"},
		{"nothing", []Answer{{Gateway: "a", Sockets: []Socket{}}}, 10, []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := merge(tt.answers, tt.limit)
			if !slices.Equal(ids(p.Sockets), tt.want) || p.NextStartKey != tt.wantNext {
				t.Fatalf("page %v next %q, want %v next %q", ids(p.Sockets), p.NextStartKey, tt.want, tt.wantNext)
			}
			if !slices.IsSorted(p.Gateways) || len(p.Gateways) != len(tt.answers) {
				t.Fatalf("gateways %v", p.Gateways)
			}
		})
	}
}

func TestAnswerIsCutToFitOneNATSMessage(t *testing.T) {
	var all []Socket
	for i := range 100 {
		all = append(all, Socket{ID: fmt.Sprintf("%032x", i), Bindings: []string{"qubicle.queue.4f2a0c1e9b8d7a6f5e4d3c2b1a098765.*"}})
	}
	data := encodeWithin(Answer{Gateway: "a", Sockets: all}, 4096)
	var a Answer
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if len(data) > 4096 || !a.More || len(a.Sockets) == 0 || !slices.Equal(ids(a.Sockets), ids(all[:len(a.Sockets)])) {
		t.Fatalf("%d bytes, more %v, %d sockets", len(data), a.More, len(a.Sockets))
	}
	// One socket always goes, so paging moves on.
	if data := encodeWithin(Answer{Gateway: "a", Sockets: all[:2]}, 10); !json.Valid(data) {
		t.Fatal("invalid JSON")
	} else if json.Unmarshal(data, &a); len(a.Sockets) != 1 || !a.More {
		t.Fatalf("%d sockets, more %v", len(a.Sockets), a.More)
	}
}

func TestRegistryKeysKeepGatewayNamesApart(t *testing.T) {
	tests := []struct{ name, key string }{
		{"cc1:5555", "cc1=3A5555"},
		{"cc1_5555", "cc1_5555"},
		{"cc1=3A5555", "cc1=3D3A5555"},
		{"gw-a", "gw-a"},
		{"[::1]:5555", "=5B=3A=3A1=5D=3A5555"},
		{"host.example.com:5555", "host=2Eexample=2Ecom=3A5555"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := registryKey(tt.name)
		if got != tt.key {
			t.Errorf("registryKey(%q) = %q, want %q", tt.name, got, tt.key)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q share key %q", tt.name, other, got)
		}
		seen[got] = tt.name
	}
}
