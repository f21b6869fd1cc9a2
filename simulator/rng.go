package simulator

// rng is a SplitMix64 generator. The simulator carries its own generator,
// rather than math/rand, so that a stream is byte-identical across Go
// releases: nothing here depends on a library's choice of algorithm.
//
// Every peer group's day gets a generator of its own, seeded from the run's
// seed and the (plant, group, day) indices, so that a decision about one
// group-day never depends on how many numbers another one drew.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// newRNG seeds a generator from a seed and a path of indices.
func newRNG(seed int64, path ...uint64) rng {
	h := mix64(uint64(seed) + golden)
	for _, p := range path {
		h = mix64(h ^ mix64(p+golden))
	}
	return rng{s: h}
}

func (r *rng) u64() uint64 {
	r.s += golden
	return mix64(r.s)
}

// float returns a number uniform in [0, 1).
func (r *rng) float() float64 { return float64(r.u64()>>11) * (1.0 / (1 << 53)) }

// uniform returns a number uniform in [a, b). The explicit conversion keeps
// the compiler from fusing the multiply-add, which would change the last bit
// on some architectures.
func (r *rng) uniform(a, b float64) float64 { return a + float64((b-a)*r.float()) }

// intn returns a number in [0, n); n must be positive. The modulo bias is
// below 2⁻³² for every n used here.
func (r *rng) intn(n int) int { return int(r.u64() % uint64(n)) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }
