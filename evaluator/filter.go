package evaluator

import "sync/atomic"

// pairFilter is a blocked Bloom filter of the (subject, flag key) pairs that
// have candidate entries in a namespace. Evaluating one flag asks it first:
// most principals have no override for most flags, and a "no" skips the
// subject lookup, whose table, entry and id are cache misses at 100,000
// overrides.
//
// Invariants:
//   - every pair of a state's subject index has its bits set in that state's
//     filter;
//   - bits are only ever set, never cleared, in a filter once it is
//     published; a rebuild makes a new one.
//
// So the states written between two rebuilds share one filter, and a writer
// sets the bits of a new pair in place (atomically) before it publishes the
// state that has the pair, with no copy. An older state that shares the
// filter sees those bits too, which only costs it false positives, as do the
// bits of pairs removed since the last rebuild. All the probes of a pair
// fall in one 512-bit block: one cache line per question.
type pairFilter struct {
	blocks []filterBlock // power-of-two length; none while empty
	live   int           // pairs in the subject index
	added  int           // pairs whose insertion set a bit since the last rebuild
}

type filterBlock [blockBits / 64]uint64

const (
	blockBits    = 512
	filterProbes = 6
	goldenRatio  = 0x9e3779b97f4a7c15
	// pairsPerBlock is the design load of a block: 8 bits a pair. A rebuild
	// sizes the filter for twice its pairs.
	pairsPerBlock = blockBits / 8
	// minBlocks is the size of a new filter: 1 KiB.
	minBlocks = 16
)

// pairHash mixes the hashes of a subject id and a flag key (hashOf) into the
// hash of the pair.
func pairHash(kind SubjectKind, hs, hk uint64) uint64 {
	x := hs ^ (hk<<31 | hk>>33)
	if kind == SubjectDevice {
		x ^= goldenRatio
	}
	// The finaliser of MurmurHash3: every input bit reaches every output bit.
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// block returns the block of pair hash x: its low bits pick it. The probes
// use the high bits of x times the golden ratio.
func (f *pairFilter) block(x uint64) *filterBlock {
	return &f.blocks[x&uint64(len(f.blocks)-1)]
}

func probe(x uint64, i int) (word int, bit uint64) {
	p := (x * goldenRatio) >> (10 + 9*i) & (blockBits - 1)
	return int(p >> 6), 1 << (p & 63)
}

// may reports whether pair hash x may have entries; false is certain.
func (f *pairFilter) may(x uint64) bool {
	if len(f.blocks) == 0 {
		return false
	}
	b := f.block(x)
	for i := range filterProbes {
		w, bit := probe(x, i)
		if atomic.LoadUint64(&b[w])&bit == 0 {
			return false
		}
	}
	return true
}

// capacity is the number of pairs the filter is designed for.
func (f *pairFilter) capacity() int { return len(f.blocks) * pairsPerBlock }

// add sets the bits of pair hash x. Readers of published states may be
// reading the same words, hence the atomic OR.
func (f *pairFilter) add(x uint64) {
	if f.may(x) {
		return
	}
	if len(f.blocks) == 0 {
		f.blocks = make([]filterBlock, minBlocks)
	}
	b := f.block(x)
	for i := range filterProbes {
		w, bit := probe(x, i)
		atomic.OrUint64(&b[w], bit)
	}
	f.added++
}

// settleFilter rebuilds the filter of the namespace being written once its
// live pairs, or the pairs that set bits since the last rebuild, exceed its
// design load, which is also how it grows and shrinks. A rebuild sizes it
// for twice the live pairs, so at least as many insertions follow before
// the next: the cost per insertion stays constant.
func (t *nsTxn) settleFilter() {
	f := &t.st.filter
	switch {
	case f.live == 0:
		*f = pairFilter{}
	case f.added > f.capacity() || f.live > f.capacity():
		*f = rebuiltFilter(t.st)
	}
}

// rebuiltFilter builds a new filter of st's subject index.
func rebuiltFilter(st *nsState) pairFilter {
	n := minBlocks
	for n*pairsPerBlock < 2*st.filter.live {
		n *= 2
	}
	f := pairFilter{blocks: make([]filterBlock, n)}
	for _, kind := range []SubjectKind{SubjectUser, SubjectDevice} {
		st.subjects(kind).each(func(sh *subjShard) {
			for _, s := range sh.slots {
				if s.se == nil {
					continue
				}
				for i := range s.se.keys {
					f.add(pairHash(kind, s.h, hashOf(s.se.keys[i].key)))
					f.live++
				}
			}
		})
	}
	return f
}
