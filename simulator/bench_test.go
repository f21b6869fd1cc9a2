package simulator

import "testing"

// BenchmarkNext measures generation: one op is one message.
func BenchmarkNext(b *testing.B) {
	cfg := ConfigForEvents(1_000_000)
	cfg.DiscardTruth = true
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	bytes := 0
	for i := 0; i < b.N; i++ {
		m, ok := s.Next()
		if !ok {
			s, _ = New(cfg)
			m, _ = s.Next()
		}
		bytes += len(m.Value)
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
}
