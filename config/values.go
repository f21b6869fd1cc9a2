package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Values the options point at. They are flag.Values, so a Registry can hand
// them to a flag.FlagSet and set them from a file or the environment alike.

type stringValue struct{ p *string }

// String sets *p.
func String(p *string) flag.Value        { return stringValue{p} }
func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

type intValue struct{ p *int }

// Int sets *p from a decimal integer.
func Int(p *int) flag.Value { return intValue{p} }
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	*v.p = n
	return nil
}
func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

type floatValue struct{ p *float64 }

// Float sets *p from a decimal number.
func Float(p *float64) flag.Value { return floatValue{p} }
func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*v.p = f
	return nil
}
func (v floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

type boolValue struct{ p *bool }

// Bool sets *p from true/false (and the other spellings strconv accepts).
func Bool(p *bool) flag.Value { return boolValue{p} }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v.p = b
	return nil
}
func (v boolValue) String() string   { return strconv.FormatBool(v.p != nil && *v.p) }
func (v boolValue) IsBoolFlag() bool { return true }

type durationValue struct{ p *time.Duration }

// Duration sets *p from a Go duration ("90s", "28h", "1h30m").
func Duration(p *time.Duration) flag.Value { return durationValue{p} }
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s or 1h30m", s)
	}
	*v.p = d
	return nil
}
func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

type listValue struct{ p *[]string }

// List sets *p from a comma-separated list; in the file it may also be a
// YAML sequence.
func List(p *[]string) flag.Value { return listValue{p} }
func (v listValue) Set(s string) error {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	*v.p = out
	return nil
}
func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (listValue) isList() {}

// Func sets an option through set and shows it through get, for a
// variable whose text form is not one of the above (an enumeration, say).
func Func(get func() string, set func(string) error) flag.Value { return funcValue{get, set} }

type funcValue struct {
	get func() string
	set func(string) error
}

func (v funcValue) Set(s string) error { return v.set(s) }
func (v funcValue) String() string {
	if v.get == nil {
		return ""
	}
	return v.get()
}
