package tokenizer

// Encode returns the token ids of text as llama2.c's run.c encode does:
// optional BOS, a dummy-prefix " " token when text is not empty, one token per
// UTF-8 character (at most 4 bytes; a character missing from the vocabulary
// becomes one byte-fallback token per byte, id byte+3), then repeatedly the
// adjacent pair whose concatenation is the highest-scoring piece is merged,
// the leftmost pair on ties, until no pair merges; then optional EOS.
//
// run.c rescans the whole sequence after every merge (quadratic); this keeps
// the candidate pairs in a heap ordered by (score desc, position asc) over a
// linked list of tokens, which takes the same merges in the same order.
//
// Differences only where run.c is undefined: text may contain NUL bytes
// (they become <0x00>), and when the vocabulary has no " " piece the dummy
// prefix is the byte fallback of ' '.
func (t *Tokenizer) Encode(text string, bos, eos bool) []int {
	toks := make([]int, 0, len(text)+3)
	if bos {
		toks = append(toks, BOS)
	}
	if text != "" {
		if t.spaceID >= 0 {
			toks = append(toks, t.spaceID)
		} else {
			toks = append(toks, byteOffset+' ')
		}
	}
	for i := 0; i < len(text); {
		// run.c: a character is a byte followed by continuation bytes
		// (10xxxxxx), cut at 4 bytes.
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.ids[text[i:j]]; ok {
			toks = append(toks, id)
		} else {
			for k := i; k < j; k++ {
				toks = append(toks, byteOffset+int(text[k]))
			}
		}
		i = j
	}
	toks = t.merge(toks)
	if eos {
		toks = append(toks, EOS)
	}
	return toks
}

// candidate is a mergeable adjacent pair: nodes left and right held ids a and
// b when it was pushed, and merge into id.
type candidate struct {
	score       float32
	left, right int32
	a, b, id    int32
}

// before orders the heap: higher score first, then the leftmost pair (node
// indices keep their text order, so the smaller left node is leftmost).
func (c candidate) before(d candidate) bool {
	if c.score != d.score {
		return c.score > d.score
	}
	return c.left < d.left
}

// mergeState is the doubly linked token list and the candidate heap.
type mergeState struct {
	t          *Tokenizer
	tok        []int32
	prev, next []int32 // -1 at the ends
	heap       []candidate
}

// merge applies the BPE merges to toks in place and returns the result.
func (t *Tokenizer) merge(toks []int) []int {
	n := len(toks)
	if n < 2 {
		return toks
	}
	s := &mergeState{t: t, tok: make([]int32, n), prev: make([]int32, n), next: make([]int32, n)}
	for i, id := range toks {
		s.tok[i] = int32(id)
		s.prev[i] = int32(i - 1)
		s.next[i] = int32(i + 1)
	}
	s.next[n-1] = -1
	for i := 0; i+1 < n; i++ {
		s.consider(int32(i), int32(i+1))
	}
	for i := len(s.heap)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
	for len(s.heap) > 0 {
		c := s.pop()
		if s.next[c.left] != c.right || s.tok[c.left] != c.a || s.tok[c.right] != c.b {
			continue // stale: a neighbour merged since this pair was pushed
		}
		// Merge right into left and unlink right.
		s.tok[c.left] = c.id
		nr := s.next[c.right]
		s.next[c.left] = nr
		if nr >= 0 {
			s.prev[nr] = c.left
		}
		s.next[c.right] = -2 // dead
		if p := s.prev[c.left]; p >= 0 {
			s.push(p, c.left)
		}
		if nr >= 0 {
			s.push(c.left, nr)
		}
	}
	out := toks[:0]
	for i := int32(0); i >= 0; i = s.next[i] {
		out = append(out, int(s.tok[i]))
	}
	return out
}

// consider appends the pair (l, r) to the heap slice when it merges, without
// restoring heap order (used before heapify).
func (s *mergeState) consider(l, r int32) bool {
	a, b := s.tok[l], s.tok[r]
	id, ok := s.t.merges[pairKey(s.t.canon[a], s.t.canon[b])]
	if !ok {
		return false
	}
	s.heap = append(s.heap, candidate{score: s.t.scores[id], left: l, right: r, a: a, b: b, id: id})
	return true
}

func (s *mergeState) push(l, r int32) {
	if s.consider(l, r) {
		s.up(len(s.heap) - 1)
	}
}

func (s *mergeState) pop() candidate {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	s.heap = h[:last]
	if last > 0 {
		s.down(0)
	}
	return top
}

func (s *mergeState) up(i int) {
	h := s.heap
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (s *mergeState) down(i int) {
	h := s.heap
	for {
		best := i
		if l := 2*i + 1; l < len(h) && h[l].before(h[best]) {
			best = l
		}
		if r := 2*i + 2; r < len(h) && h[r].before(h[best]) {
			best = r
		}
		if best == i {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}
