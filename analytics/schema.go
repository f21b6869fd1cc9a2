package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SchemaVersion is the version of the tables this package writes. A file
// stamped with a newer version was written by a newer release; opening it
// read-write fails with ErrSchemaTooNew rather than risk writing rows in an
// old shape.
//
// Version 2 adds the views and the table macro of the analytical model
// (views.go); its tables are version 1's. Version 3 drops the primary key
// of shifts (the Store recognises repeats by their input position, see
// screen), whose index cost half of every insert; its columns are the
// same. Version 4 adds rule_options, the rule options the sink last
// started with (RecordRules); a file upgraded to it has none until a sink
// starts on it, since nothing tells under which options its rows were
// computed. Version 5 adds alerts.late: a record alert of a shift that
// arrived late (false in upgraded files, whose alerts were all on time).
const SchemaVersion = 5

// ErrSchemaTooNew is returned by Open for a file of a later schema version.
var ErrSchemaTooNew = errors.New("analytics: database schema is newer than this program")

// schemaDDL creates the tables of version 5 (the views of views.go,
// created after them, complete it). Every statement is
// idempotent so that Open can run them all on every start. The table and
// column names are a public contract (dashboards and `stakhanov query`
// users rely on them): add columns, never rename.
var schemaDDL = []string{
	`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS shifts (` + shiftsColumns + `)`,
	`CREATE TABLE IF NOT EXISTS alerts (
		alert_id    VARCHAR PRIMARY KEY,
		type        VARCHAR,
		plant_id    VARCHAR,
		industry    VARCHAR,
		role        VARCHAR,
		unit        VARCHAR,
		worker_id   VARCHAR,
		event_id    VARCHAR,
		day         DATE,
		rate        DOUBLE,
		norm_rate   DOUBLE,
		ratio       DOUBLE,
		scrap_share DOUBLE,
		group_size  INTEGER,
		bulk_share  DOUBLE,
		detected_at TIMESTAMPTZ,
		late        BOOLEAN DEFAULT false
	)`,
	`CREATE TABLE IF NOT EXISTS rejects (
		topic           VARCHAR,
		kafka_partition INTEGER,
		kafka_offset    BIGINT,
		reason          VARCHAR,
		key             BLOB,
		value           BLOB,
		detail          VARCHAR,
		PRIMARY KEY (topic, kafka_partition, kafka_offset)
	)`,
	`CREATE TABLE IF NOT EXISTS norms (
		plant_id    VARCHAR,
		role        VARCHAR,
		unit        VARCHAR,
		day         DATE,
		shifts      INTEGER,
		median_rate DOUBLE,
		mean_rate   DOUBLE,
		p90_rate    DOUBLE,
		mad_rate    DOUBLE,
		bulk_share  DOUBLE,
		PRIMARY KEY (plant_id, role, unit, day)
	)`,
	`CREATE TABLE IF NOT EXISTS ingest_offsets (
		topic           VARCHAR,
		kafka_partition INTEGER,
		next_offset     BIGINT,
		PRIMARY KEY (topic, kafka_partition)
	)`,
	`CREATE TABLE IF NOT EXISTS rule_options (
		name        VARCHAR PRIMARY KEY,
		value       DOUBLE NOT NULL,
		unit        VARCHAR NOT NULL,
		description VARCHAR
	)`,
}

// dropShiftsKey rebuilds shifts without its primary key. DuckDB cannot
// drop a key in place; the views are redefined after it.
func dropShiftsKey(ctx context.Context, conn *sql.Conn) error {
	var keys int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_constraints()
		WHERE table_name = 'shifts' AND constraint_type = 'PRIMARY KEY'`).Scan(&keys); err != nil {
		return fmt.Errorf("upgrade shifts: %w", err)
	}
	if keys == 0 {
		return nil
	}
	for _, stmt := range []string{
		`CREATE TABLE shifts_v3 (` + shiftsColumns + `)`,
		`INSERT INTO shifts_v3 BY NAME SELECT * FROM shifts`,
		`DROP TABLE shifts`,
		`ALTER TABLE shifts_v3 RENAME TO shifts`,
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("upgrade shifts: %w", err)
		}
	}
	return nil
}

// shiftsColumns are the columns of shifts, which has no key (version 3).
const shiftsColumns = `
		event_id        VARCHAR,
		plant_id        VARCHAR,
		industry        VARCHAR,
		section         VARCHAR,
		role            VARCHAR,
		worker_id       VARCHAR,
		crew_size       INTEGER,
		shift_start     TIMESTAMPTZ,
		shift_hours     DOUBLE,
		output          DOUBLE,
		unit            VARCHAR,
		scrap           DOUBLE,
		rate            DOUBLE,
		norm_rate       DOUBLE,
		ratio           DOUBLE,
		late            BOOLEAN,
		kafka_partition INTEGER,
		kafka_offset    BIGINT,
		kafka_topic     VARCHAR,
		day             DATE,
		scrap_share     DOUBLE,
		norm_count      INTEGER,
		norm_mean       DOUBLE,
		norm_p90        DOUBLE,
		norm_mad        DOUBLE,
		norm_bulk       DOUBLE,
		crew_rate       DOUBLE,
		crew_norm_rate  DOUBLE,
		crew_ratio      DOUBLE
	`

// migrate brings the schema to SchemaVersion in one transaction, so that
// two half-created schemas can never be observed.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return inTx(ctx, conn, func() error { return migrateIn(ctx, conn) })
}

func migrateIn(ctx context.Context, conn *sql.Conn) error {
	for _, stmt := range schemaDDL {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	var version sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT max(version) FROM schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case !version.Valid:
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version VALUES (?)`, SchemaVersion); err != nil {
			return fmt.Errorf("stamp schema version: %w", err)
		}
	case version.Int64 > SchemaVersion:
		// Checked before the views: a newer release's definitions stay.
		return fmt.Errorf("%w: file has version %d, this program writes %d",
			ErrSchemaTooNew, version.Int64, SchemaVersion)
	case version.Int64 < SchemaVersion:
		// Version 1 lacks the views, which createViews adds; versions 1
		// and 2 have a key on shifts; versions 1 to 3 lack rule_options,
		// which schemaDDL has created; versions 1 to 4 lack alerts.late.
		if err := dropShiftsKey(ctx, conn); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `ALTER TABLE alerts ADD COLUMN IF NOT EXISTS late BOOLEAN DEFAULT false`); err != nil {
			return fmt.Errorf("add alerts.late: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `UPDATE schema_version SET version = ?`, SchemaVersion); err != nil {
			return fmt.Errorf("stamp schema version: %w", err)
		}
	}
	return createViews(ctx, conn)
}
