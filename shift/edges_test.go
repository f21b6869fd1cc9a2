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

// TestDecodeSurrogates: \u escapes of UTF-16 surrogates must come in pairs,
// a high half then a low one; input that ends where the low half would begin
// is truncated, not yet unpaired.
func TestDecodeSurrogates(t *testing.T) {
	cases := []struct {
		name, in, reason, worker string
	}{
		{"pair", replace("worker_id", `"w\ud83d\ude00"`), "", "w😀"},
		{"pair, upper case", replace("worker_id", `"\uD83D\uDE00w"`), "", "😀w"},
		{"first pair", replace("worker_id", `"\ud800\udc00"`), "", "\U00010000"},
		{"last pair", replace("worker_id", `"\udbff\udfff"`), "", "\U0010ffff"},
		{"below the surrogates", replace("worker_id", `"\ud7ff"`), "", "\ud7ff"},
		{"above the surrogates", replace("worker_id", `"\ue000"`), "", "\ue000"},
		{"high alone", replace("worker_id", `"\ud83d"`), ReasonInvalidUTF8, ""},
		{"low alone", replace("worker_id", `"\ude00"`), ReasonInvalidUTF8, ""},
		{"low then high", replace("worker_id", `"\ude00\ud83d"`), ReasonInvalidUTF8, ""},
		{"high then high", replace("worker_id", `"\ud83d\ud83d\ude00"`), ReasonInvalidUTF8, ""},
		{"high then letter", replace("worker_id", `"\ud83dx"`), ReasonInvalidUTF8, ""},
		{"high then other escape", replace("worker_id", `"\ud83d\n"`), ReasonInvalidUTF8, ""},
		{"in an ignored field", withField(`"x":"\udfff"`), ReasonInvalidUTF8, ""},
		// the input ends
		{"end after high", `{"worker_id":"\ud83d`, ReasonTruncated, ""},
		{"end after last high", `{"worker_id":"\udbff`, ReasonTruncated, ""},
		{"end after high and backslash", `{"worker_id":"\ud83d\`, ReasonTruncated, ""},
		{"end after high and \\u", `{"worker_id":"\ud83d\u`, ReasonTruncated, ""},
		{"end within low", `{"worker_id":"\ud83d\ude0`, ReasonTruncated, ""},
		{"end after pair", `{"worker_id":"\ud83d\ude00`, ReasonTruncated, ""},
		{"end in ignored field", `{"x":"\ud83d`, ReasonTruncated, ""},
		{"end after first low", `{"worker_id":"\udc00`, ReasonInvalidUTF8, ""},
		{"end after low", `{"worker_id":"\ude00`, ReasonInvalidUTF8, ""},
		{"end after high and letter", `{"worker_id":"\ud83dx`, ReasonInvalidUTF8, ""},
		{"end after high and non-low", `{"worker_id":"\ud83d\u0041`, ReasonInvalidUTF8, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Decode([]byte(c.in))
			if got := Reason(err); got != c.reason {
				t.Fatalf("%s: reason %q, want %q (%v)", c.in, got, c.reason, err)
			}
			if err == nil && ev.WorkerID != c.worker {
				t.Fatalf("worker %q, want %q", ev.WorkerID, c.worker)
			}
		})
	}
}
