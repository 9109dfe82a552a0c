package jsondoc

import (
	"encoding/json"
	"errors"
)

// Validate reports whether raw is one well-formed JSON document.
// TODO(jsondoc): replace with the zero-allocation scanner.
func Validate(raw []byte) error {
	if !json.Valid(raw) {
		return errors.New("invalid JSON")
	}
	return nil
}
