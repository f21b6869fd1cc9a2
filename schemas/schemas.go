package schemas

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schemas' $id values: the addresses they are published at, and the
// names Event and Alert compile them under.
const (
	EventSchemaID = "https://stakhanov.dev/schemas/shift-event.schema.json"
	AlertSchemaID = "https://stakhanov.dev/schemas/alert.schema.json"
)

var (
	//go:embed shift-event.schema.json
	eventJSON []byte
	//go:embed alert.schema.json
	alertJSON []byte
)

// EventJSON returns the text of the shift event schema.
func EventJSON() []byte { return bytes.Clone(eventJSON) }

// AlertJSON returns the text of the alert schema.
func AlertJSON() []byte { return bytes.Clone(alertJSON) }

// ErrInvalid is wrapped by every error of ValidateEvent and ValidateAlert:
// the message is not JSON or does not match the schema. For the latter the
// chain also holds a *jsonschema.ValidationError with every failure.
var ErrInvalid = errors.New("message does not match its schema")

type compiled struct {
	event, alert *jsonschema.Schema
}

// load compiles both schemas once: compiling costs far more than a
// validation, and the embedded files cannot change while the program runs.
var load = sync.OnceValues(func() (compiled, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// Formats are annotations only by default in 2020-12; shift_start,
	// day and detected_at are dates by contract, not just strings.
	c.AssertFormat()
	for _, r := range []struct {
		id   string
		text []byte
	}{{EventSchemaID, eventJSON}, {AlertSchemaID, alertJSON}} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.text))
		if err != nil {
			return compiled{}, fmt.Errorf("schemas: parse %s: %w", r.id, err)
		}
		if err := c.AddResource(r.id, doc); err != nil {
			return compiled{}, fmt.Errorf("schemas: add %s: %w", r.id, err)
		}
	}
	var s compiled
	var err error
	if s.event, err = c.Compile(EventSchemaID); err != nil {
		return compiled{}, fmt.Errorf("schemas: compile %s: %w", EventSchemaID, err)
	}
	if s.alert, err = c.Compile(AlertSchemaID); err != nil {
		return compiled{}, fmt.Errorf("schemas: compile %s: %w", AlertSchemaID, err)
	}
	return s, nil
})

// Event returns the compiled shift event schema. It is shared: safe for
// concurrent use, not to be modified.
func Event() (*jsonschema.Schema, error) {
	s, err := load()
	return s.event, err
}

// Alert returns the compiled alert schema. It is shared: safe for
// concurrent use, not to be modified.
func Alert() (*jsonschema.Schema, error) {
	s, err := load()
	return s.alert, err
}

// ValidateEvent reports whether data, one Kafka message value, is a shift
// event by the schema. The decoder in package shift checks more (see the
// schema's $comment), so nil here does not promise that shift.Decode
// accepts the message; an error does promise that it rejects it.
func ValidateEvent(data []byte) error {
	s, err := load()
	if err != nil {
		return err
	}
	return validate(s.event, "shift event", data)
}

// ValidateAlert reports whether data, one message value of the alerts
// topic, is an alert by the schema.
func ValidateAlert(data []byte) error {
	s, err := load()
	if err != nil {
		return err
	}
	return validate(s.alert, "alert", data)
}

func validate(s *jsonschema.Schema, what string, data []byte) error {
	// encoding/json, underneath UnmarshalJSON, would replace invalid
	// UTF-8 with U+FFFD and validate the result; JSON text must be UTF-8,
	// and the decoder rejects such bytes as invalid_utf8.
	if !utf8.Valid(data) {
		return fmt.Errorf("schemas: %s: %w: not UTF-8", what, ErrInvalid)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("schemas: %s: %w: not JSON: %w", what, ErrInvalid, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("schemas: %s: %w: %w", what, ErrInvalid, err)
	}
	return nil
}
