package analytics

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
)

// The analytical model: views over the base tables that answer the
// questions analysts keep asking of a run, so that notebooks and
// `stakhanov query` users share one definition of each answer instead of
// re-deriving it (and disagreeing on the details). The view and column
// names are a contract like the tables': add columns, never rename.
// docs/analytics.md describes each view with an example.
//
// The views are created by migrate after the tables they read, on a
// read-write open that finds them missing or made from other definitions
// (each view's comment carries a fingerprint of viewDDL), so that a new
// release replaces an old definition and an open of a current file writes
// nothing. A read-only open leaves the file as it is: a file no version-2
// program has opened read-write has none of them.

// dayRecordsCTE counts a group-day's records and suspect records, for the
// views that set them beside that day's norm or scrap.
const dayRecordsCTE = `	day_records AS (
		SELECT
			plant_id, role, unit, day,
			count(*) FILTER (WHERE type = 'record_shift') AS records,
			count(*) FILTER (WHERE type = 'suspect_record') AS suspect_records
		FROM alerts
		WHERE type IN ('record_shift', 'suspect_record')
		GROUP BY plant_id, role, unit, day
	)`

// viewDDL creates the views and the table macro, in dependency order.
var viewDDL = []string{
	// records: each record or suspect record with the shift that made it,
	// so that one row answers "who, where, how much, against which norm".
	// A LEFT JOIN keeps the alert even if its shift were missing; the
	// group and worker come from the alert, which always has them.
	`CREATE OR REPLACE VIEW records AS
	SELECT
		a.alert_id,
		a.type,
		a.type = 'suspect_record' AS suspect,
		a.event_id,
		a.industry,
		a.plant_id,
		s.section,
		a.role,
		a.unit,
		a.worker_id,
		s.crew_size,
		s.shift_start,
		a.day,
		s.shift_hours,
		s.output,
		s.scrap,
		s.scrap_share,
		s.rate,
		s.norm_rate,
		s.ratio,
		s.norm_count,
		s.crew_rate,
		s.crew_norm_rate,
		s.crew_ratio,
		a.detected_at
	FROM alerts a
	LEFT JOIN shifts s ON s.event_id = a.event_id
	WHERE a.type IN ('record_shift', 'suspect_record')`,

	// pace_setters: who leads their shop, and how often. lead_share puts
	// pace_days against the days the worker actually worked there, since
	// a worker absent half the time cannot lead on those days.
	`CREATE OR REPLACE VIEW pace_setters AS
	WITH led AS (
		SELECT
			industry, plant_id, role, unit, worker_id,
			count(*) AS pace_days,
			min(day) AS first_day,
			max(day) AS last_day,
			max(ratio) AS max_ratio,
			avg(ratio) AS mean_ratio
		FROM alerts
		WHERE type = 'pace_setter'
		GROUP BY industry, plant_id, role, unit, worker_id
	),
	worked AS (
		SELECT plant_id, role, unit, worker_id, count(DISTINCT day) AS days_worked
		FROM shifts
		WHERE NOT late
		GROUP BY plant_id, role, unit, worker_id
	)
	SELECT
		led.industry, led.plant_id, led.role, led.unit, led.worker_id,
		led.pace_days,
		worked.days_worked,
		led.pace_days::DOUBLE / worked.days_worked AS lead_share,
		led.first_day,
		led.last_day,
		led.max_ratio,
		led.mean_ratio
	FROM led
	LEFT JOIN worked
		ON worked.plant_id = led.plant_id AND worked.role = led.role
		AND worked.unit = led.unit AND worked.worker_id = led.worker_id`,

	// norm_history: how a group's norm moved day by day, next to the
	// records that pushed it (a record is judged against the norm, and
	// enough of them raise it: records_in_window spans the window the norm
	// row is computed over, [day end − window, day end), the window being
	// the one the pipeline runs with, from rule_options; NULL while that
	// is unknown). Instants are compared as epoch seconds, so that no
	// reader's time zone enters.
	`CREATE OR REPLACE VIEW norm_history AS
	WITH plant_industry AS (
		SELECT plant_id, any_value(industry) AS industry
		FROM shifts
		GROUP BY plant_id
	),
` + dayRecordsCTE + `,
	record_starts AS (
		SELECT a.plant_id, a.role, a.unit, epoch(s.shift_start) AS start
		FROM alerts a
		JOIN shifts s ON s.event_id = a.event_id
		WHERE a.type = 'record_shift'
	),
	rule_window AS (
		SELECT any_value(value) AS seconds FROM rule_options WHERE name = 'window'
	),
	history AS (
		SELECT
			n.*,
			lag(n.median_rate) OVER (PARTITION BY n.plant_id, n.role, n.unit ORDER BY n.day) AS prev_median_rate
		FROM norms n
	)
	SELECT
		pi.industry,
		h.plant_id, h.role, h.unit, h.day,
		h.shifts, h.median_rate, h.mean_rate, h.p90_rate, h.mad_rate, h.bulk_share,
		h.prev_median_rate,
		CASE WHEN h.prev_median_rate <> 0 THEN h.median_rate / h.prev_median_rate - 1 END AS median_change,
		coalesce(r.records, 0) AS records,
		coalesce(r.suspect_records, 0) AS suspect_records,
		CASE WHEN rw.seconds IS NOT NULL THEN
			(SELECT count(*)
				FROM record_starts w
				WHERE w.plant_id = h.plant_id AND w.role = h.role AND w.unit = h.unit
				AND w.start >= epoch(h.day) + 86400 - rw.seconds AND w.start < epoch(h.day) + 86400)
		END AS records_in_window
	FROM history h
	CROSS JOIN rule_window rw
	LEFT JOIN plant_industry pi ON pi.plant_id = h.plant_id
	LEFT JOIN day_records r
		ON r.plant_id = h.plant_id AND r.role = h.role AND r.unit = h.unit AND r.day = h.day`,

	// industry_norms: a plant's norm is its own shop's median, so only
	// the comparison with the same trade at the industry's other plants
	// says whether the shop itself works fast or slow.
	`CREATE OR REPLACE VIEW industry_norms AS
	WITH plant_industry AS (
		SELECT plant_id, any_value(industry) AS industry
		FROM shifts
		GROUP BY plant_id
	),
	peers AS (
		SELECT
			pi.industry, n.role, n.unit, n.day, n.plant_id, n.median_rate,
			count(n.median_rate) OVER industry_day AS plants,
			median(n.median_rate) OVER industry_day AS industry_median_rate,
			rank() OVER (PARTITION BY pi.industry, n.role, n.unit, n.day ORDER BY n.median_rate DESC NULLS LAST) AS rank_in_industry
		FROM norms n
		JOIN plant_industry pi ON pi.plant_id = n.plant_id
		WINDOW industry_day AS (PARTITION BY pi.industry, n.role, n.unit, n.day)
	)
	SELECT
		industry, role, unit, day, plant_id, median_rate,
		plants,
		industry_median_rate,
		median_rate / nullif(industry_median_rate, 0) AS ratio_to_industry,
		rank_in_industry
	FROM peers`,

	// quality: is a shop's output being bought with scrap? suspect_share
	// says how many of its records the scrap rule flagged.
	`CREATE OR REPLACE VIEW quality AS
	WITH day_output AS (
		SELECT
			industry, plant_id, role, unit, day,
			count(*) AS shifts,
			sum(output) AS output,
			sum(scrap) AS scrap
		FROM shifts
		WHERE NOT late
		GROUP BY industry, plant_id, role, unit, day
	),
` + dayRecordsCTE + `
	SELECT
		o.industry, o.plant_id, o.role, o.unit, o.day,
		o.shifts, o.output, o.scrap,
		o.scrap / nullif(o.output, 0) AS scrap_share,
		coalesce(r.records, 0) AS records,
		coalesce(r.suspect_records, 0) AS suspect_records,
		r.suspect_records::DOUBLE / nullif(r.records + r.suspect_records, 0) AS suspect_share
	FROM day_output o
	LEFT JOIN day_records r
		ON r.plant_id = o.plant_id AND r.role = o.role AND r.unit = o.unit AND r.day = o.day`,

	// crew_effect: a record credited to one worker may be the work of a
	// crew reorganised around him (Stakhanov's helpers propped the roof
	// while he cut). Counted per crew-hour, that part of the excess over
	// the norm disappears; from_crew_share is how much of it.
	`CREATE OR REPLACE VIEW crew_effect AS
	SELECT
		alert_id, type, event_id, industry, plant_id, role, unit, worker_id, day, crew_size,
		ratio,
		crew_ratio,
		ratio / nullif(crew_ratio, 0) AS crew_factor,
		CASE WHEN ratio > 1 AND crew_ratio IS NOT NULL
			THEN greatest(0, least(1, 1 - (crew_ratio - 1) / (ratio - 1)))
		END AS from_crew_share
	FROM records`,

	// movement_spread: how the movement spread from plant to plant and
	// industry to industry, month by month. Every month with any report
	// has a row, so the cumulative columns show plateaus too.
	`CREATE OR REPLACE VIEW movement_spread AS
	WITH reporting AS (
		SELECT
			date_trunc('month', day)::DATE AS month,
			count(DISTINCT plant_id) AS plants_reporting,
			count(DISTINCT industry) AS industries_reporting
		FROM shifts
		GROUP BY month
	),
	movement AS (
		SELECT date_trunc('month', day)::DATE AS month, type, plant_id, industry
		FROM alerts
		WHERE type IN ('record_shift', 'pace_setter')
	),
	monthly AS (
		SELECT
			month,
			count(*) FILTER (WHERE type = 'record_shift') AS records,
			count(*) FILTER (WHERE type = 'pace_setter') AS pace_setter_days,
			count(DISTINCT plant_id) FILTER (WHERE type = 'record_shift') AS plants_with_records,
			count(DISTINCT industry) FILTER (WHERE type = 'record_shift') AS industries_with_records,
			count(DISTINCT plant_id) FILTER (WHERE type = 'pace_setter') AS plants_with_pace_setters,
			count(DISTINCT industry) FILTER (WHERE type = 'pace_setter') AS industries_with_pace_setters
		FROM movement
		GROUP BY month
	),
	plants_joining AS (
		SELECT month, count(*) AS joined
		FROM (SELECT plant_id, min(month) AS month FROM movement GROUP BY plant_id)
		GROUP BY month
	),
	industries_joining AS (
		SELECT month, count(*) AS joined
		FROM (SELECT industry, min(month) AS month FROM movement GROUP BY industry)
		GROUP BY month
	)
	SELECT
		rep.month,
		rep.plants_reporting,
		rep.industries_reporting,
		coalesce(m.records, 0) AS records,
		coalesce(m.pace_setter_days, 0) AS pace_setter_days,
		coalesce(m.plants_with_records, 0) AS plants_with_records,
		coalesce(m.industries_with_records, 0) AS industries_with_records,
		coalesce(m.plants_with_pace_setters, 0) AS plants_with_pace_setters,
		coalesce(m.industries_with_pace_setters, 0) AS industries_with_pace_setters,
		sum(coalesce(pj.joined, 0)) OVER (ORDER BY rep.month)::BIGINT AS plants_in_movement,
		sum(coalesce(ij.joined, 0)) OVER (ORDER BY rep.month)::BIGINT AS industries_in_movement
	FROM reporting rep
	LEFT JOIN monthly m ON m.month = rep.month
	LEFT JOIN plants_joining pj ON pj.month = rep.month
	LEFT JOIN industries_joining ij ON ij.month = rep.month`,

	// norm_revision: what raising the norm to a percentile of the recent
	// rates would do, and to how many workers: the question behind every
	// norm revision that followed the movement. Each group looks back from
	// its own latest day, so a shop that stopped reporting is judged on
	// its last weeks rather than on nothing.
	`CREATE OR REPLACE MACRO norm_revision(pct := 0.8, days := 28) AS TABLE
	WITH latest AS (
		SELECT plant_id, role, unit, max(day) AS latest_day
		FROM shifts
		WHERE NOT late
		GROUP BY plant_id, role, unit
	),
	recent AS (
		SELECT s.industry, s.plant_id, s.role, s.unit, s.worker_id, s.output, s.shift_hours, s.rate
		FROM shifts s
		JOIN latest l ON l.plant_id = s.plant_id AND l.role = s.role AND l.unit = s.unit
		WHERE NOT s.late AND s.day > l.latest_day - days
	),
	proposal AS (
		SELECT
			any_value(industry) AS industry, plant_id, role, unit,
			count(*) AS shifts,
			count(DISTINCT worker_id) AS workers,
			quantile_cont(rate, pct) AS proposed_norm
		FROM recent
		GROUP BY plant_id, role, unit
	),
	worker_rates AS (
		SELECT plant_id, role, unit, worker_id, sum(output) / sum(shift_hours) AS rate
		FROM recent
		GROUP BY plant_id, role, unit, worker_id
	),
	current_norms AS (
		SELECT plant_id, role, unit, arg_max(median_rate, day) AS current_norm
		FROM norms
		GROUP BY plant_id, role, unit
	)
	SELECT
		p.industry, p.plant_id, p.role, p.unit,
		p.shifts,
		p.workers,
		c.current_norm,
		p.proposed_norm,
		p.proposed_norm / nullif(c.current_norm, 0) - 1 AS change,
		count(*) FILTER (WHERE w.rate < p.proposed_norm) AS workers_short,
		count(*) FILTER (WHERE w.rate < p.proposed_norm)::DOUBLE / p.workers AS share_short
	FROM proposal p
	JOIN worker_rates w ON w.plant_id = p.plant_id AND w.role = p.role AND w.unit = p.unit
	LEFT JOIN current_norms c ON c.plant_id = p.plant_id AND c.role = p.role AND c.unit = p.unit
	GROUP BY p.industry, p.plant_id, p.role, p.unit, p.shifts, p.workers, c.current_norm, p.proposed_norm`,
}

// modelViews are the views viewDDL creates.
var modelViews = []string{
	"records", "pace_setters", "norm_history", "industry_norms",
	"quality", "crew_effect", "movement_spread",
}

// viewComment marks a view made by exactly this viewDDL.
var viewComment = func() string {
	sum := sha256.Sum256([]byte(strings.Join(viewDDL, ";\n")))
	return "stakhanov analytical model " + hex.EncodeToString(sum[:8]) + ", see docs/analytics.md"
}()

// createViews (re)creates the views and the macro unless the file already
// has this release's.
func createViews(ctx context.Context, conn *sql.Conn) error {
	var views, macros int
	err := conn.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM duckdb_views()
			WHERE view_name IN (SELECT unnest(string_split(?, ','))) AND comment = ?),
		(SELECT count(*) FROM duckdb_functions()
			WHERE function_name = 'norm_revision' AND function_type = 'table_macro')`,
		strings.Join(modelViews, ","), viewComment).Scan(&views, &macros)
	if err != nil {
		return fmt.Errorf("read views: %w", err)
	}
	if views == len(modelViews) && macros == 1 {
		return nil
	}
	for _, stmt := range viewDDL {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create views: %w", err)
		}
	}
	for _, v := range modelViews {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COMMENT ON VIEW %s IS '%s'", v, viewComment)); err != nil {
			return fmt.Errorf("create views: %w", err)
		}
	}
	return nil
}
