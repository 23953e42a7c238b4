package binding

import "sync"

// Index finds every value registered under a binding that matches an event
// subject. It is a trie over binding segments, like nats-server's sublist:
// each node has literal children plus at most one '*' and one '#' child, and
// the values of a node match every subject that reaches it (a binding covers
// everything below its last segment). Matching a subject therefore costs the
// depth of the subject times the number of matching branches, however many
// non-matching bindings are registered.
//
// An Index is safe for concurrent use; Match only takes the read lock.
type Index[T comparable] struct {
	mu   sync.RWMutex
	root node[T]
	n    int
}

type node[T comparable] struct {
	lit  map[string]*node[T]
	star *node[T]
	hash *node[T]
	vals []T
	// at maps a value to its position in vals once vals is large, so Add and
	// Remove stay O(1) when thousands of connections share one binding.
	at map[T]int
}

// valsIndexAt is the number of values from which a node keeps the at map.
const valsIndexAt = 16

// NewIndex returns an empty Index.
func NewIndex[T comparable]() *Index[T] { return &Index[T]{} }

// Add registers v under b. It reports false, and changes nothing, when v was
// already registered under b or b is the zero Binding.
func (ix *Index[T]) Add(b Binding, v T) bool {
	if b.n == 0 {
		return false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := &ix.root
	for _, seg := range b.segs[:b.n] {
		n = n.child(seg, true)
	}
	if n.find(v) >= 0 {
		return false
	}
	n.vals = append(n.vals, v)
	if n.at != nil {
		n.at[v] = len(n.vals) - 1
	} else if len(n.vals) >= valsIndexAt {
		n.at = make(map[T]int, len(n.vals))
		for i, x := range n.vals {
			n.at[x] = i
		}
	}
	ix.n++
	return true
}

// Remove unregisters v from b and prunes nodes left empty. It reports false
// when v was not registered under b.
func (ix *Index[T]) Remove(b Binding, v T) bool {
	if b.n == 0 {
		return false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var path [MaxSegments + 1]*node[T]
	path[0] = &ix.root
	for i, seg := range b.segs[:b.n] {
		c := path[i].child(seg, false)
		if c == nil {
			return false
		}
		path[i+1] = c
	}
	n := path[b.n]
	i := n.find(v)
	if i < 0 {
		return false
	}
	last := len(n.vals) - 1
	if i != last {
		n.vals[i] = n.vals[last]
		if n.at != nil {
			n.at[n.vals[i]] = i
		}
	}
	var zero T
	n.vals[last] = zero // let the value be collected
	n.vals = n.vals[:last]
	if n.at != nil {
		delete(n.at, v)
		if len(n.vals) < valsIndexAt/2 {
			n.at = nil
		}
	}
	if len(n.vals) == 0 {
		n.vals = nil
	}
	ix.n--
	for d := int(b.n); d > 0 && path[d].empty(); d-- {
		path[d-1].drop(b.segs[d-1])
	}
	return true
}

// Len returns the number of (binding, value) pairs registered.
func (ix *Index[T]) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// Match appends to dst every value whose binding matches subject and returns
// the extended slice. A value registered under several matching bindings
// appears once per binding, so callers that need a set must dedupe. Match
// does not allocate when dst has room for the result.
func (ix *Index[T]) Match(subject string, dst []T) []T {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	// The root itself holds no values: the zero Binding is never added.
	return ix.root.walk(subject, 0, false, dst)
}

// walk appends the values of n (when emit is set) and of every descendant of
// n that matches the tokens of subject starting at byte pos
// (pos == len(subject)+1: no tokens left).
func (n *node[T]) walk(subject string, pos int, emit bool, dst []T) []T {
	if emit {
		dst = append(dst, n.vals...)
	}
	if n.hash != nil {
		dst = n.hash.walkHash(subject, pos, dst)
	}
	if pos > len(subject) {
		return dst
	}
	tok, next := token(subject, pos)
	if n.star != nil {
		dst = n.star.walk(subject, next, true, dst)
	}
	if c := n.lit[tok]; c != nil {
		dst = c.walk(subject, next, true, dst)
	}
	return dst
}

// walkHash matches the children of a '#' node h after '#' has consumed zero
// or more tokens from pos. A child can match after several different
// consumption lengths; its own values are appended only the first time, so a
// binding with at most one segment after '#' (all that the grammar allows)
// is reported once per match.
func (h *node[T]) walkHash(subject string, pos int, dst []T) []T {
	dst = append(dst, h.vals...)
	if h.hash != nil { // '#.#' matches what '#' matches
		dst = h.hash.walkHash(subject, pos, dst)
	}
	if h.star == nil && len(h.lit) == 0 {
		return dst
	}
	for p := pos; p <= len(subject); {
		tok, next := token(subject, p)
		if h.star != nil {
			dst = h.star.walk(subject, next, p == pos, dst)
		}
		if c := h.lit[tok]; c != nil {
			dst = c.walk(subject, next, !seenToken(subject, pos, p, tok), dst)
		}
		p = next
	}
	return dst
}

// seenToken reports whether tok is one of the tokens of subject between
// byte offsets from and to.
func seenToken(subject string, from, to int, tok string) bool {
	for p := from; p < to; {
		t, next := token(subject, p)
		if t == tok {
			return true
		}
		p = next
	}
	return false
}

func (n *node[T]) child(seg string, create bool) *node[T] {
	switch seg {
	case "*":
		if n.star == nil && create {
			n.star = &node[T]{}
		}
		return n.star
	case "#":
		if n.hash == nil && create {
			n.hash = &node[T]{}
		}
		return n.hash
	}
	c := n.lit[seg]
	if c == nil && create {
		if n.lit == nil {
			n.lit = make(map[string]*node[T])
		}
		c = &node[T]{}
		n.lit[seg] = c
	}
	return c
}

func (n *node[T]) drop(seg string) {
	switch seg {
	case "*":
		n.star = nil
	case "#":
		n.hash = nil
	default:
		delete(n.lit, seg)
		if len(n.lit) == 0 {
			n.lit = nil
		}
	}
}

func (n *node[T]) empty() bool {
	return len(n.vals) == 0 && n.star == nil && n.hash == nil && len(n.lit) == 0
}

func (n *node[T]) find(v T) int {
	if n.at != nil {
		if i, ok := n.at[v]; ok {
			return i
		}
		return -1
	}
	for i, x := range n.vals {
		if x == v {
			return i
		}
	}
	return -1
}
