package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"fspo/store"
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
	if isWebPage(r) {
		s.message(w, r, &session{}, http.StatusInternalServerError, "Something went wrong",
			"The server could not complete this request. Try again in a moment; if it keeps happening, tell the person who runs this server.")
		return
	}
	writeError(w, http.StatusInternalServerError, "server_error", "internal error; see the server log")
}

// decodeJSON reads a JSON body of at most MaxBodyBytes into v. It answers
// 413 or 400 itself and returns false on failure. strict rejects unknown fields.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, strict bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err == nil && len(bytes.TrimSpace(body)) == 0 {
		err = io.EOF
	}
	if err == nil && !utf8.Valid(body) {
		// encoding/json would replace the bad bytes by U+FFFD and store
		// altered text: refuse instead, naming the field.
		badRequest(w, "%s", invalidUTF8(body))
		return false
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		if strict {
			dec.DisallowUnknownFields()
		}
		err = dec.Decode(v)
		if err == nil {
			if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
				err = errors.New("trailing data after the JSON object")
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case bodyReadFailure(w, err):
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

// checkText validates one text field: storable text (store.CheckText: valid
// UTF-8, no NUL or other C0 control but tab, newline and carriage return),
// non-empty (when required), at most MaxTextChars characters. It returns the message for a 400.
func (s *Server) checkText(field, v string, required bool) string {
	if err := store.CheckText(field, v); err != nil {
		return err.Error()
	}
	switch n := utf8.RuneCountInString(v); {
	case required && n == 0:
		return fmt.Sprintf("field %q is empty", field)
	case n > s.cfg.MaxTextChars:
		return fmt.Sprintf("field %q has %d characters; the limit is %d", field, n, s.cfg.MaxTextChars)
	}
	return ""
}

// invalidUTF8 describes where a body that is not valid UTF-8 goes wrong:
// the top-level field whose value holds the bad bytes, when it can tell.
func invalidUTF8(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) == nil {
		names := slices.Sorted(maps.Keys(fields))
		for _, k := range names {
			if !utf8.Valid(fields[k]) {
				return fmt.Sprintf("field %q is not valid UTF-8", k)
			}
		}
	}
	i := 0
	for i < len(body) {
		r, n := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	return fmt.Sprintf("request body is not valid UTF-8 (byte %d)", i)
}

// isWebPage tells the person-facing pages (errors as HTML) from the API
// routes (errors as JSON).
func isWebPage(r *http.Request) bool {
	p := r.URL.Path
	return !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/v1/") && p != "/healthz" && !strings.HasSuffix(p, ".csv")
}
