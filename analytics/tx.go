package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// inTx runs f in one transaction on conn and commits it when f succeeds;
// otherwise everything f did is rolled back. Commits, migrations and
// snapshots all rely on it: rows and offsets land together, a schema is
// never half created, and a snapshot reads one state of the database.
func inTx(ctx context.Context, conn *sql.Conn, f func() error) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// A cancelled ctx must not stop the rollback.
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			// Closing the connection aborts whatever it still holds.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
	}()
	if err := f(); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	committed = true
	return nil
}
