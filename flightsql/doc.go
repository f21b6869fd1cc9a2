// Package flightsql serves the pipeline's read-only SQL over Arrow Flight
// SQL, the protocol of Flight SQL's ADBC drivers (Python, Go, C, R), its
// JDBC driver (DBeaver, Superset, Tableau) and its ODBC driver, and is a
// client of it for `stakhanov query`.
//
// Every statement goes through the walls of analytics.QueryArrowReadOnly
// (the first keyword, DuckDB's classification, a READ ONLY transaction):
// the same checks as the HTTP endpoint, on the same handle. Results stream
// as DuckDB's Arrow record batches, one or two in flight at a time; writes
// of every kind (DoPut, update commands, ingestion, transactions) are
// refused with PermissionDenied, naming why.
//
// Statement and prepared-statement handles are the SQL text itself: the
// server keeps no state between calls, so a client that prepares and never
// closes leaks nothing, and a forged handle is no more than SQL sent
// directly — it passes the same checks when it runs.
//
// Authentication is a bearer token (gRPC metadata "authorization: Bearer
// <token>", which the JDBC driver sends for token=… and ADBC for
// adbc.flight.sql.authorization_header) checked on every call, the
// handshake included, by the access.Tokens of Options.Tokens — in the
// pipeline the HTTP endpoint's own, so that one token file serves both —
// and client certificates when Options.TLS requires them. A server bound
// beyond loopback with neither refuses to start (ErrNoCredentials).
package flightsql
