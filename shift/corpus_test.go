package shift_test

import (
	"testing"

	"github.com/stakhanov/stakhanov/internal/badcorpus"
	"github.com/stakhanov/stakhanov/shift"
)

// TestBadCorpus: every message of the shared bad-input corpus is rejected
// with its reason.
func TestBadCorpus(t *testing.T) {
	cases, err := badcorpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 25 {
		t.Fatalf("corpus holds %d kinds of bad message, want at least 25", len(cases))
	}
	reasons := map[string]bool{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := shift.Decode(c.Value)
			if got := shift.Reason(err); got != c.Reason {
				t.Fatalf("reason %q, want %q (%v)", got, c.Reason, err)
			}
		})
		reasons[c.Reason] = true
	}
	if len(reasons) < 20 {
		t.Errorf("corpus covers %d reasons", len(reasons))
	}
}
