package hf

import (
	"container/heap"
	"fmt"
)

// bpe merges symbols by rank: the pair whose merge ranks lowest merges first,
// leftmost on ties, using a heap over the symbol list so long words cost
// O(n log n).
type bpe struct {
	vocab  map[string]int
	pieces []string
	ranks  map[[2]int]int // pair of ids -> rank
}

type symbol struct {
	id         int
	prev, next int
	gone       bool
}

type pairItem struct{ rank, left, leftID, rightID int }

type pairHeap []pairItem

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].left < h[b].left
}
func (h pairHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairItem)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merge applies the merges to the symbol ids and returns the result.
func (b *bpe) merge(ids []int) []int {
	syms := make([]symbol, len(ids))
	for k, id := range ids {
		syms[k] = symbol{id: id, prev: k - 1, next: k + 1}
	}
	h := &pairHeap{}
	push := func(l int) {
		r := syms[l].next
		if l < 0 || r >= len(syms) {
			return
		}
		if rank, ok := b.ranks[[2]int{syms[l].id, syms[r].id}]; ok {
			heap.Push(h, pairItem{rank, l, syms[l].id, syms[r].id})
		}
	}
	for k := 0; k+1 < len(syms); k++ {
		push(k)
	}
	for h.Len() > 0 {
		p := heap.Pop(h).(pairItem)
		l := p.left
		r := syms[l].next
		if syms[l].gone || r >= len(syms) || syms[l].id != p.leftID || syms[r].id != p.rightID {
			continue // stale
		}
		syms[l].id = b.vocab[b.pieces[p.leftID]+b.pieces[p.rightID]]
		syms[r].gone = true
		syms[l].next = syms[r].next
		if syms[r].next < len(syms) {
			syms[syms[r].next].prev = l
		}
		if syms[l].prev >= 0 {
			push(syms[l].prev)
		}
		push(l)
	}
	out := make([]int, 0, len(ids))
	for k := 0; k < len(syms); k = syms[k].next {
		out = append(out, syms[k].id)
	}
	return out
}

// addMerge records that left+right merge with the given rank.
func (b *bpe) addMerge(rank int, left, right string) error {
	l, okl := b.vocab[left]
	r, okr := b.vocab[right]
	_, okm := b.vocab[left+right]
	if !okl || !okr || !okm {
		return fmt.Errorf("merge %d %q %q: a token is not in the vocabulary", rank, left, right)
	}
	b.ranks[[2]int{l, r}] = rank // a repeated pair keeps its last rank
	return nil
}
