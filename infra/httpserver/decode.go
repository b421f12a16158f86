package httpserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/scaleshop/scaleshop/infra/problem"
)

// DecodeJSON reads r's body, at most limit bytes, as exactly one JSON value
// into v. It is the one request-body decoder of every service and of the
// gateway's own handlers, so every API answers bad bodies alike:
//
//   - past limit: 413;
//   - a member v does not have, a name given twice, a value of the wrong
//     type: 400 with a field error naming it ("items[1].quantity");
//   - anything that is not one JSON value: 400 on the field "body".
//
// The decoder's own error text never reaches the client: it names Go types
// and byte offsets, which tell an API user nothing. The decoder is
// go-json-experiment (the encoding/json/v2 design), because its errors
// carry the JSON pointer of the bad member; encoding/json's unknown-field
// error is a bare string.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return problem.Errorf(problem.ErrTooLarge, "the body is larger than %d bytes", limit)
		}
		return bodyError("could not be read")
	}
	if len(body) == 0 {
		return bodyError("required: a JSON object")
	}
	err = json.Unmarshal(body, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	if sem, ok := errors.AsType[*json.SemanticError](err); ok {
		field := fieldOf(sem.JSONPointer)
		switch {
		case field == "":
			return bodyError("must be a JSON " + jsonKind(sem.GoType))
		case errors.Is(sem.Err, json.ErrUnknownName):
			return fieldError(field, "unknown field")
		default:
			return fieldError(field, "must be "+article(jsonKind(sem.GoType)))
		}
	}
	if syn, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		if field := fieldOf(syn.JSONPointer); field != "" && errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return fieldError(field, "given more than once")
		}
		return bodyError(fmt.Sprintf("is not valid JSON (at byte %d)", syn.ByteOffset))
	}
	return bodyError("is not valid JSON")
}

func bodyError(detail string) error { return fieldError("body", detail) }

func fieldError(field, detail string) error {
	return (&problem.ValidationError{}).Add(field, detail)
}

// fieldOf writes a JSON pointer ("/items/1/quantity") the way the APIs
// name fields in their other errors ("items[1].quantity").
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// jsonKind names the JSON type a Go type is read from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value"
}

func article(kind string) string {
	if strings.IndexByte("aeiou", kind[0]) >= 0 {
		return "an " + kind
	}
	return "a " + kind
}
