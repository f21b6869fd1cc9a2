package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
)

var _ ingest.RulesRecorder = (*Store)(nil)

// The units of rule_options.value, by the type of the option.
const (
	UnitSeconds = "seconds" // a duration
	UnitCount   = "count"   // shifts or workers
	UnitRatio   = "ratio"   // a ratio or a share, 1 = 100 %
)

// RuleOption is one row of rule_options.
type RuleOption struct {
	Name        string // the option's key in the configuration's rules section
	Value       float64
	Unit        string // UnitSeconds, UnitCount or UnitRatio
	Description string
}

// RuleOptions lists o's options as rule_options holds them, in the order of
// processors.Options.Params.
func RuleOptions(o processors.Options) []RuleOption {
	params := o.Params()
	out := make([]RuleOption, 0, len(params))
	for _, p := range params {
		r := RuleOption{Name: p.Key, Description: p.Usage}
		switch v := p.Value.(type) {
		case *time.Duration:
			r.Value, r.Unit = v.Seconds(), UnitSeconds
		case *int:
			r.Value, r.Unit = float64(*v), UnitCount
		case *float64:
			r.Value, r.Unit = *v, UnitRatio
		default:
			// a new kind of option needs a unit here before it can be stored
			panic(fmt.Sprintf("analytics: rule option %s of type %T", p.Key, v))
		}
		out = append(out, r)
	}
	return out
}

// RecordRules replaces the rows of rule_options with o's, in one
// transaction: the table then says under which options the rows stored
// from now on are computed, so that analysts judge them by the thresholds
// the pipeline ran with rather than by the defaults. The sink role calls
// it each time it starts (ingest.RulesRecorder).
func (s *Store) RecordRules(ctx context.Context, o processors.Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.opts.ReadOnly:
		return ErrReadOnly
	case s.loaders == nil:
		return ErrClosed
	}
	if err := s.writable(); err != nil {
		return fmt.Errorf("analytics: record rule options: %w", err)
	}
	if s.invalid != nil {
		if err := s.reopen(ctx); err != nil {
			return sinkFailed(err)
		}
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("analytics: record rule options: %w", err)
	}
	defer conn.Close()
	err = inTx(ctx, conn, func() error {
		if _, err := conn.ExecContext(ctx, `DELETE FROM rule_options`); err != nil {
			return err
		}
		for _, r := range RuleOptions(o) {
			if _, err := conn.ExecContext(ctx, `INSERT INTO rule_options VALUES (?, ?, ?, ?)`,
				r.Name, r.Value, r.Unit, r.Description); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		err = s.check(err)
		if isFatal(err) {
			s.invalid = err
		}
		return sinkFailed(fmt.Errorf("analytics: record rule options: %w", err))
	}
	return nil
}
