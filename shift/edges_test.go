package shift

import (
	"strings"
	"testing"
)

// withField returns valid with one more field, raw JSON, before the others.
func withField(field string) string { return strings.Replace(valid, "{", "{"+field+",", 1) }

// nested returns n arrays (or objects, each value under key "a") around inner.
func nested(n int, obj bool, inner string) string {
	if obj {
		return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n)
	}
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// TestDecodeNesting: an ignored field may hold arrays and objects nested
// MaxDepth deep, whatever the innermost one holds, and not one deeper.
func TestDecodeNesting(t *testing.T) {
	if MaxDepth != 32 {
		t.Fatalf("MaxDepth %d, the contract says 32", MaxDepth)
	}
	for _, obj := range []bool{false, true} {
		for _, inner := range []string{"", "1", `"s"`, "[]", "{}"} {
			for _, n := range []int{1, MaxDepth, MaxDepth + 1} {
				// [] and {} inside add one level of their own
				depth := n
				if inner == "[]" || inner == "{}" {
					depth++
				}
				if obj && inner == "" {
					continue // {"a":} is not JSON
				}
				v := nested(n, obj, inner)
				_, err := Decode([]byte(withField(`"x":` + v)))
				want := ""
				if depth > MaxDepth {
					want = ReasonTooDeep
				}
				if got := Reason(err); got != want {
					t.Errorf("%d deep: %.60s…: reason %q, want %q (%v)", depth, v, got, want, err)
				}
				if obj {
					continue // an object as the whole message is the event
				}
				// an array as the whole message is no event
				_, err = Decode([]byte(v))
				if want == "" {
					want = ReasonNotObject
				}
				if got := Reason(err); got != want {
					t.Errorf("%d deep, alone: %.60s…: reason %q, want %q (%v)", depth, v, got, want, err)
				}
			}
		}
	}
}
