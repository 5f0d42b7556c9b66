package serve

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"fspo/store"
)

type prefJSON struct {
	ID       int64     `json:"id"`
	Prompt   string    `json:"prompt"`
	Chosen   string    `json:"chosen"`
	Rejected string    `json:"rejected"`
	Source   string    `json:"source"`
	Created  time.Time `json:"created"`
}

func toPrefJSON(p store.Preference) prefJSON {
	return prefJSON{ID: p.ID, Prompt: p.Prompt, Chosen: p.Chosen, Rejected: p.Rejected, Source: p.Source, Created: p.Created}
}

// createUser: POST /api/users (admin) {"name"} → 201 {"id","token"}. The
// token is shown only here; the store keeps its hash.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if r.ContentLength != 0 && !s.decodeJSON(w, r, &req, true) {
		return
	}
	if msg := s.checkText("name", req.Name, false); msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	key, msg := idempotencyKey(r)
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	var u store.User
	var token string
	var err error
	if key == "" {
		u, token, err = s.newUser(r, req.Name)
	} else {
		u, token, err = s.newUserOnce(w, r, req.Name, key)
	}
	switch {
	case errors.Is(err, errAnswered):
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": u.ID, "token": token, "name": u.Name})
}

// errAnswered: the handler's helper has already written the response.
var errAnswered = errors.New("answered")

// newUserOnce creates a user for an Idempotency-Key. The id and the token
// are keyed hashes of the key under the server's key (derived from the
// admin token, as every instance has it), so nothing but the user's row is
// stored and a retry — even after a crash — meets the same id and is
// answered the same token (Idempotent-Replayed: true). The same key with
// another name is 422; once the user has rotated its token the first
// answer no longer holds and the retry is 409.
func (s *Server) newUserOnce(w http.ResponseWriter, r *http.Request, name, key string) (store.User, string, error) {
	u := store.User{ID: "u_" + hex.EncodeToString(s.serverMAC("user-idempotency-key", key)[:8]), Name: name, Created: s.cfg.Now()}
	token := "fspo_" + base64.RawURLEncoding.EncodeToString(s.serverMAC("user-idempotency-token", key))
	err := s.cfg.Store.CreateUser(r.Context(), u, HashToken(token))
	if !errors.Is(err, store.ErrConflict) {
		return u, token, err
	}
	first, err := s.cfg.Store.UserByID(r.Context(), u.ID)
	if err != nil {
		return u, "", err
	}
	if first.Name != name {
		writeError(w, http.StatusUnprocessableEntity, "invalid_request_error", "this Idempotency-Key was used for a different user")
		return u, "", errAnswered
	}
	holder, err := s.cfg.Store.UserByToken(r.Context(), HashToken(token))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, "", err
	}
	if err != nil || holder.ID != first.ID {
		writeError(w, http.StatusConflict, "invalid_request_error", "the user created with this Idempotency-Key has rotated its token since: the first answer cannot be replayed")
		return u, "", errAnswered
	}
	w.Header().Set("Idempotent-Replayed", "true")
	return first, token, nil
}

func (s *Server) newUser(r *http.Request, name string) (store.User, string, error) {
	u := store.User{ID: newID("u_"), Name: name, Created: s.cfg.Now()}
	token := newToken()
	if err := s.cfg.Store.CreateUser(r.Context(), u, HashToken(token)); err != nil {
		return store.User{}, "", err
	}
	return u, token, nil
}

// savePreference validates and stores one preference of the user; it
// returns an HTTP status and message when the input is refused.
func (s *Server) savePreference(r *http.Request, p store.Preference) (store.Preference, int, string, error) {
	for _, f := range []struct{ name, v string }{{"prompt", p.Prompt}, {"chosen", p.Chosen}, {"rejected", p.Rejected}} {
		if msg := s.checkText(f.name, f.v, true); msg != "" {
			return p, http.StatusBadRequest, msg, nil
		}
	}
	if p.Chosen == p.Rejected {
		return p, http.StatusBadRequest, `"chosen" and "rejected" are the same text`, nil
	}
	n, err := s.cfg.Store.CountPreferences(r.Context(), p.User, "")
	if err != nil {
		return p, 0, "", err
	}
	if n >= s.cfg.MaxPreferences {
		return p, http.StatusForbidden, "preference limit reached (" + strconv.Itoa(s.cfg.MaxPreferences) + "); delete some first", nil
	}
	p.Created = s.cfg.Now()
	want := p
	p, err = s.cfg.Store.AddPreference(r.Context(), p)
	if errors.Is(err, store.ErrReplay) {
		if p.Prompt != want.Prompt || p.Chosen != want.Chosen || p.Rejected != want.Rejected || p.Source != want.Source {
			return p, http.StatusUnprocessableEntity, "this Idempotency-Key was used for a different preference", nil
		}
		return p, 0, "", err
	}
	return p, 0, "", err
}

// maxIdempotencyKey bounds the Idempotency-Key header (a UUID is 36).
const maxIdempotencyKey = 255

// idempotencyKey reads the Idempotency-Key header: "" when absent; printable
// ASCII of at most 255 bytes, else the message of a 400.
func idempotencyKey(r *http.Request) (string, string) {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > maxIdempotencyKey {
		return "", fmt.Sprintf("Idempotency-Key has %d bytes; the limit is %d", len(k), maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", "Idempotency-Key must be printable ASCII without spaces"
		}
	}
	return k, ""
}

// addPreference: POST /api/preferences {"prompt","chosen","rejected"} → 201.
// The 201 is sent only after the store committed the row. With an
// Idempotency-Key header, a retry with the same key (even after a crash:
// the key is committed with the row) answers the first row again, with
// "Idempotent-Replayed: true", and stores nothing; the same key with another
// preference is 422.
func (s *Server) addPreference(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Prompt   string `json:"prompt"`
		Chosen   string `json:"chosen"`
		Rejected string `json:"rejected"`
		// Pair and Choice answer a pair of GET /api/next-pair instead.
		Pair   string `json:"pair"`
		Choice string `json:"choice"`
	}
	key, msg := idempotencyKey(r)
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	if !s.decodeJSON(w, r, &req, true) {
		return
	}
	u := userFrom(r.Context())
	var p store.Preference
	var status int
	var err error
	switch {
	case (req.Pair != "" || req.Choice != "") && (req.Prompt != "" || req.Chosen != "" || req.Rejected != ""):
		badRequest(w, `give either "pair" and "choice", or "prompt", "chosen" and "rejected"`)
		return
	case req.Pair != "" || req.Choice != "":
		p, status, msg, err = s.answerPair(r, u.ID, req.Pair, req.Choice, key)
	default:
		p, status, msg, err = s.savePreference(r, store.Preference{User: u.ID, Prompt: req.Prompt, Chosen: req.Chosen, Rejected: req.Rejected,
			Source: "api", IdempotencyKey: key})
	}
	switch {
	case errors.Is(err, store.ErrReplay):
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusCreated, toPrefJSON(p))
	case err != nil:
		s.internal(w, r, err)
	case status != 0:
		writeError(w, status, "invalid_request_error", msg)
	default:
		writeJSON(w, http.StatusCreated, toPrefJSON(p))
	}
}

// listPreferences: GET /api/preferences[?limit=N&after=ID] → {"data": [...],
// "has_more", "next_after"}: a page of the caller's own, oldest first.
func (s *Server) listPreferences(w http.ResponseWriter, r *http.Request) {
	q := store.PrefQuery{First: defaultPageSize}
	v := r.URL.Query()
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPageSize {
			badRequest(w, "limit %q is not a whole number in 1..%d", l, maxPageSize)
			return
		}
		q.First = n
	}
	if a := v.Get("after"); a != "" {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 0 {
			badRequest(w, "after %q is not a preference id", a)
			return
		}
		q.After = id
	}
	limit := q.First
	q.First++ // one more tells whether another page follows
	prefs, err := s.cfg.Store.Preferences(r.Context(), userFrom(r.Context()).ID, q)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	more := len(prefs) > limit
	prefs = prefs[:min(len(prefs), limit)]
	out := make([]prefJSON, len(prefs))
	for i, p := range prefs {
		out[i] = toPrefJSON(p)
	}
	page := map[string]any{"data": out, "has_more": more}
	if more {
		page["next_after"] = prefs[len(prefs)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

// defaultPageSize and maxPageSize bound GET /api/preferences's "limit".
const defaultPageSize, maxPageSize = 100, 1000

// deletePreference: DELETE /api/preferences/{id} → 204, or 404 when the id
// is unknown or belongs to someone else.
func (s *Server) deletePreference(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		badRequest(w, "preference id %q is not a positive integer", r.PathValue("id"))
		return
	}
	err = s.cfg.Store.DeletePreference(r.Context(), userFrom(r.Context()).ID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found_error", "no preference "+strconv.FormatInt(id, 10)+" of yours")
	case err != nil:
		s.internal(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// describeMe: GET /api/me/description → {"description", "shots"}: the
// model's description of the caller, inferred from their selected shots.
func (s *Server) describeMe(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	shots, own, err := s.personalization(r.Context(), u.ID, s.cfg.Strategy, s.cfg.Shots, 0)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	desc, source := own, "user"
	if own == "" {
		if desc, err = s.cfg.Engine.Describe(r.Context(), shots); err != nil {
			s.internal(w, r, err)
			return
		}
		source = "model"
	}
	writeJSON(w, http.StatusOK, map[string]any{"description": desc, "source": source, "shots": len(shots), "engine": s.cfg.Engine.Name()})
}

// setDescription: PUT /api/me/description {"description"} → 200 {"description",
// "source": "user"}: the caller's own description, which a COT model then
// conditions on instead of its guess; "" removes it (then "source":
// "model", the guess is back).
func (s *Server) setDescription(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Description *string `json:"description"`
	}
	if !s.decodeJSON(w, r, &req, true) {
		return
	}
	if req.Description == nil {
		badRequest(w, `"description" is required ("" removes yours)`)
		return
	}
	text := strings.TrimSpace(*req.Description)
	if msg := s.checkText("description", text, false); msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	if err := s.cfg.Store.SetDescription(r.Context(), userFrom(r.Context()).ID, text); err != nil {
		s.internal(w, r, err)
		return
	}
	source := "user"
	if text == "" {
		source = "model"
	}
	writeJSON(w, http.StatusOK, map[string]any{"description": text, "source": source})
}

// personalization is what personalizes a user's answers: the shots the
// strategy selects and the user's own description ("" for none).
func (s *Server) personalization(ctx context.Context, user, strategy string, n int, seed uint64) ([]Shot, string, error) {
	shots, err := s.selectShots(ctx, user, strategy, n, seed)
	if err != nil {
		return nil, "", err
	}
	desc, err := s.cfg.Store.Description(ctx, user)
	return shots, desc, err
}

// models: GET /v1/models, as OpenAI clients list them.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	var data []map[string]any
	for _, name := range s.engineNames() {
		data = append(data, map[string]any{"id": name, "object": "model", "owned_by": "fspo"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) engineNames() []string {
	return slices.Sorted(maps.Keys(s.engines))
}

// rotateToken: POST /api/me/token → 200 {"token"}: a new token for the
// caller (shown once); the old one stops working at once.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	token := newToken()
	if err := s.cfg.Store.SetToken(r.Context(), u.ID, HashToken(token)); err != nil {
		s.internal(w, r, err)
		return
	}
	// a new token ends the web sign-ins made with the old one
	if err := s.cfg.Store.DeleteSessions(r.Context(), u.ID, false); err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": u.ID, "token": token})
}

// deleteMe: DELETE /api/me → 204: the caller's account and all their data.
func (s *Server) deleteMe(w http.ResponseWriter, r *http.Request) {
	s.removeUser(w, r, userFrom(r.Context()).ID)
}

// deleteUser: DELETE /api/users/{id} (admin) → 204, or 404.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	s.removeUser(w, r, r.PathValue("id"))
}

func (s *Server) removeUser(w http.ResponseWriter, r *http.Request, id string) {
	err := s.cfg.Store.DeleteUser(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found_error", "no user "+strconv.Quote(id))
	case err != nil:
		s.internal(w, r, err)
	default:
		s.cfg.Logger.Info("user deleted", "user", id)
		w.WriteHeader(http.StatusNoContent)
	}
}
