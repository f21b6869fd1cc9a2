// Package schemas publishes the pipeline's two public message formats as
// JSON Schema (draft 2020-12): the shift event read from the input topic
// (shift-event.schema.json) and the alert written to the alerts topic
// (alert.schema.json). Producers and consumers in other languages can
// validate against the files; Go code can use ValidateEvent and
// ValidateAlert.
//
// The schemas describe the code, not the other way round: package shift
// decides which events are good and ingest.AppendAlertJSON how an alert is
// written, and the tests hold the schemas to them (every message the
// simulator makes is judged alike by the decoder and the event schema, and
// every alert a pipeline run publishes validates). What JSON Schema cannot
// state — scrap not above output, duplicate keys, nesting and size limits —
// is listed in each file's $comment with the few values on which schema and
// decoder part ways: an event that validates can still be a bad record.
package schemas
