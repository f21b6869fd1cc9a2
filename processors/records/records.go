package records

// Verdict is the outcome of judging one shift.
type Verdict int

const (
	None    Verdict = iota // an ordinary shift
	Record                 // record_shift
	Suspect                // suspect_record
)

func (v Verdict) String() string {
	switch v {
	case Record:
		return "record_shift"
	case Suspect:
		return "suspect_record"
	}
	return "none"
}

// Rule holds the thresholds (see processors.Options for defaults).
type Rule struct {
	MinShifts         int
	Ratio             float64
	SuspectScrapShare float64
}

// Judge classifies a shift from its window size, its ratio to the norm (NaN
// when the norm is 0 or absent: no record can be judged then) and its scrap
// share.
func (r Rule) Judge(windowShifts int, ratio, scrapShare float64) Verdict {
	if windowShifts < r.MinShifts || !(ratio >= r.Ratio) {
		return None
	}
	if scrapShare > r.SuspectScrapShare {
		return Suspect
	}
	return Record
}
