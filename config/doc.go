// Package config resolves a command's options from four sources, each
// overriding the one before: the documented defaults, a YAML file, the
// environment (STAKHANOV_…) and command-line flags.
//
// Options are data: a Registry lists each one once, with its key in the
// file ("kafka.sasl.password"), the environment variable derived from the
// key (STAKHANOV_KAFKA_SASL_PASSWORD), its flag name when it has one, and
// the variable it sets. Every source is checked against that list, so a key
// the file misspells is an error naming it and its line rather than a
// setting silently ignored, and the effective configuration can be printed
// back as a file (secrets redacted), each value with the source it came
// from.
//
// Nothing here knows Kafka or DuckDB: the app package registers their
// options.
package config
