// Package records holds the record rule: a shift is a record when its
// group's window is large enough to judge, and its rate stands at least
// Ratio times the norm. Quality control decides which records count: one
// whose scrap share exceeds SuspectScrapShare is a suspect record — a claim
// the accepted output does not support.
package records
