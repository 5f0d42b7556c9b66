package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"
)

// apiError is the error body, shaped like OpenAI's so its clients show the message.
type apiError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	var e apiError
	e.Error.Message, e.Error.Type = msg, typ
	writeJSON(w, status, e)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf(format, args...))
}

// internal reports an unexpected error: logged (without request data), and
// a generic 500 to the client.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.cfg.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "server_error", "internal error; see the server log")
}

// decodeJSON reads a JSON body of at most MaxBodyBytes into v. It answers
// 413 or 400 itself and returns false on failure. strict rejects unknown fields.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, strict bool) bool {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			err = errors.New("trailing data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error",
			fmt.Sprintf("request body is larger than the limit of %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		badRequest(w, "empty request body; send a JSON object")
	default:
		badRequest(w, "bad JSON body: %v", err)
	}
	return false
}

// checkText validates one text field: non-empty (when required), valid
// UTF-8, at most MaxTextChars characters. It returns the message for a 400.
func (s *Server) checkText(field, v string, required bool) string {
	switch n := utf8.RuneCountInString(v); {
	case required && n == 0:
		return fmt.Sprintf("field %q is empty", field)
	case !utf8.ValidString(v):
		return fmt.Sprintf("field %q is not valid UTF-8", field)
	case n > s.cfg.MaxTextChars:
		return fmt.Sprintf("field %q has %d characters; the limit is %d", field, n, s.cfg.MaxTextChars)
	}
	return ""
}
