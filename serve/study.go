package serve

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"fspo/store"
)

// A study system is "fspo" or "base" (the default engine with or without
// the user's shots), or "ENGINE", "ENGINE:fspo", "ENGINE:base" for a named engine.
type system struct {
	engine      Engine
	personalize bool
}

func (s *Server) parseSystem(spec string) (system, error) {
	switch spec {
	case "fspo":
		return system{s.cfg.Engine, true}, nil
	case "base":
		return system{s.cfg.Engine, false}, nil
	}
	name, mode, _ := strings.Cut(spec, ":")
	e, ok := s.engines[name]
	if !ok {
		return system{}, fmt.Errorf("unknown system %q: want fspo, base, or an engine name (%s) optionally with :fspo or :base", spec, strings.Join(s.engineNames(), ", "))
	}
	switch mode {
	case "", "fspo":
		return system{e, true}, nil
	case "base":
		return system{e, false}, nil
	}
	return system{}, fmt.Errorf("system %q: mode %q is not fspo or base", spec, mode)
}

// studyInput is the body of POST /api/studies.
type studyInput struct {
	Name           string    `json:"name"`
	Questions      []string  `json:"questions"`
	LabelQuestions []string  `json:"label_questions"`
	Pairs          int       `json:"pairs"`
	Systems        [2]string `json:"systems"`
}

// newStudy validates in; the string is the message of a 400.
func (s *Server) newStudy(in studyInput) (store.Study, string) {
	st := store.Study{ID: newID("s_"), Name: strings.TrimSpace(in.Name), Pairs: in.Pairs,
		SystemA: in.Systems[0], SystemB: in.Systems[1], Created: s.cfg.Now()}
	if msg := s.checkText("name", st.Name, true); msg != "" {
		return st, msg
	}
	clean := func(field string, qs []string) ([]string, string) {
		var out []string
		for i, q := range qs {
			q = strings.TrimSpace(q)
			if q == "" {
				continue
			}
			if msg := s.checkText(fmt.Sprintf("%s[%d]", field, i), q, true); msg != "" {
				return nil, msg
			}
			out = append(out, q)
		}
		if len(out) > 200 {
			return nil, fmt.Sprintf("%q has %d entries; the limit is 200", field, len(out))
		}
		return out, ""
	}
	var msg string
	if st.Questions, msg = clean("questions", in.Questions); msg != "" {
		return st, msg
	}
	if st.LabelQuestions, msg = clean("label_questions", in.LabelQuestions); msg != "" {
		return st, msg
	}
	if len(st.Questions) == 0 {
		return st, `"questions" is empty`
	}
	if st.Pairs < 0 || st.Pairs > 50 {
		return st, fmt.Sprintf(`"pairs" %d is outside 0..50`, st.Pairs)
	}
	for _, sys := range in.Systems {
		if _, err := s.parseSystem(sys); err != nil {
			return st, err.Error()
		}
	}
	if st.SystemA == st.SystemB {
		return st, fmt.Sprintf("both systems are %q; a study compares two different ones", st.SystemA)
	}
	return st, ""
}

// apiCreateStudy: POST /api/studies (admin) → 201 {"id", …}.
func (s *Server) apiCreateStudy(w http.ResponseWriter, r *http.Request) {
	var in studyInput
	if !s.decodeJSON(w, r, &in, true) {
		return
	}
	key, msg := idempotencyKey(r)
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	st, msg := s.newStudy(in)
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	if key != "" {
		// The key becomes the study's id (keyed hash), so it is committed
		// with the row: a retry meets the same id.
		st.ID = "s_" + hex.EncodeToString(s.serverMAC("study-idempotency-key", key)[:8])
	}
	err := s.cfg.Store.CreateStudy(r.Context(), st)
	if key != "" && errors.Is(err, store.ErrConflict) {
		first, ferr := s.cfg.Store.Study(r.Context(), st.ID)
		if ferr != nil {
			s.internal(w, r, ferr)
			return
		}
		if !sameStudy(first, st) {
			writeError(w, http.StatusUnprocessableEntity, "invalid_request_error", "this Idempotency-Key was used for a different study")
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		st, err = first, nil
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if st.LabelQuestions == nil {
		st.LabelQuestions = []string{} // as the store gives it back: a replay answers the same bytes
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": st.ID, "name": st.Name, "questions": st.Questions,
		"label_questions": st.LabelQuestions, "pairs": st.Pairs, "systems": []string{st.SystemA, st.SystemB}})
}

// sameStudy compares what a study creation request sets.
func sameStudy(a, b store.Study) bool {
	return a.Name == b.Name && slices.Equal(a.Questions, b.Questions) && slices.Equal(a.LabelQuestions, b.LabelQuestions) &&
		a.Pairs == b.Pairs && a.SystemA == b.SystemA && a.SystemB == b.SystemB
}

// orderKey derives the key that randomizes left/right per (study, user,
// question) from the admin token: stable across restarts, unknown to participants.
func (s *Server) orderKey() []byte {
	k := sha256.Sum256([]byte("fspo study order\x00" + s.cfg.AdminToken))
	return k[:]
}

// studySeed is a keyed hash of the parts: the seed of a study's generations
// and (its low bit) the side the first system is shown on.
func (s *Server) studySeed(parts ...string) uint64 {
	return binary.LittleEndian.Uint64(s.serverMAC(parts...))
}

// serverMAC is HMAC-SHA256 of the parts (each followed by a NUL) under the
// server's key (derived from the admin token, so every instance of a
// deployment agrees and restarts keep it).
func (s *Server) serverMAC(parts ...string) []byte {
	m := hmac.New(sha256.New, s.orderKey())
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// pairSignature signs the pair a study shows a participant at a labelling
// step; labelPost accepts a study label only with it, so a participant
// cannot meet the "label N pairs" step with made-up texts or by sending one
// pair twice.
func (s *Server) pairSignature(study, user string, step int, question, a, b string) string {
	return hex.EncodeToString(s.serverMAC("pair-label", study, user, strconv.Itoa(step), question, a, b))
}

// leftSystem is the system shown on the left for this participant and question.
func (s *Server) leftSystem(st store.Study, user string, q int) (left, right string) {
	if s.studySeed("side", st.ID, user, strconv.Itoa(q))&1 == 0 {
		return st.SystemA, st.SystemB
	}
	return st.SystemB, st.SystemA
}

// labelQuestion is the question of a participant's k-th labelling pair.
func labelQuestion(st store.Study, k int) string {
	qs := st.LabelQuestions
	if len(qs) == 0 {
		qs = st.Questions
	}
	return qs[k%len(qs)]
}

// studyAnswer is one system's answer on a compare page: its text, the
// examples in its prompt and those left out for length.
type studyAnswer struct {
	Text           string
	Shots, LeftOut int
}

// answerAs generates the answer of one study system for user.
func (s *Server) answerAs(ctx context.Context, spec, user, question string, seed uint64) (studyAnswer, error) {
	sys, err := s.parseSystem(spec)
	if err != nil {
		return studyAnswer{}, err
	}
	req := AnswerRequest{Question: question, Personalize: sys.personalize, MaxTokens: s.cfg.MaxTokens,
		Temperature: 1, TopP: 1, Seed: seed}
	if sys.personalize {
		if req.Shots, err = s.selectShots(ctx, user, s.cfg.Strategy, s.cfg.Shots, seed); err != nil {
			return studyAnswer{}, err
		}
	}
	a, err := sys.engine.Answer(ctx, req)
	if err != nil {
		return studyAnswer{}, fmt.Errorf("system %s: %w", spec, err)
	}
	if !sys.personalize {
		return studyAnswer{Text: a.Text}, nil
	}
	return studyAnswer{Text: a.Text, Shots: a.Shots, LeftOut: len(req.Shots) - a.Shots}, nil
}

// shotCounts is what a vote records of the two answers' prompts: the
// examples in each and those left out for length (left, then right).
type shotCounts [4]int

// sealShots encrypts the compare page's shot counts for its vote form
// (AES-256-GCM under the server's key, bound to study, participant and
// question): the page must not tell which answer is personalized, and the
// vote must record the counts the page's prompts really had.
func (s *Server) sealShots(study, user string, q int, c shotCounts) string {
	aead := s.shotsAEAD()
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce) // never fails (crypto/rand documentation, Go 1.24+)
	plain := make([]byte, 0, 16)
	for _, n := range c {
		plain = binary.LittleEndian.AppendUint32(plain, uint32(n))
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, shotsContext(study, user, q)))
}

// openShots reverses sealShots; ok is false for a missing or altered value,
// or one sealed for another study, participant or question.
func (s *Server) openShots(sealed, study, user string, q int) (c shotCounts, ok bool) {
	aead := s.shotsAEAD()
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < aead.NonceSize() {
		return c, false
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], shotsContext(study, user, q))
	if err != nil || len(plain) != 16 {
		return c, false
	}
	for i := range c {
		c[i] = int(binary.LittleEndian.Uint32(plain[4*i:]))
	}
	return c, true
}

func shotsContext(study, user string, q int) []byte {
	return []byte("vote-shots\x00" + study + "\x00" + user + "\x00" + strconv.Itoa(q))
}

func (s *Server) shotsAEAD() cipher.AEAD {
	block, err := aes.NewCipher(s.serverMAC("vote-shots-key"))
	if err != nil {
		panic(err) // a 32-byte key: cannot fail
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// Results summarizes a study: how often SystemA's answer was picked.
type Results struct {
	Study        string  `json:"study"`
	Name         string  `json:"name"`
	SystemA      string  `json:"system_a"`
	SystemB      string  `json:"system_b"`
	Votes        int     `json:"votes"`
	WinsA        int     `json:"wins_a"`
	WinRate      float64 `json:"win_rate"`
	Low95        float64 `json:"wilson_low_95"`
	High95       float64 `json:"wilson_high_95"`
	PValue       float64 `json:"p_value_one_sided"`
	Participants int     `json:"participants"`
	// ShotsA and ShotsB: the examples in the prompts of each system's
	// answers that were voted on (those recorded), as the engines reported.
	ShotsA ShotStats `json:"shots_a"`
	ShotsB ShotStats `json:"shots_b"`
}

// ShotStats summarizes the prompts of one system's voted answers: how many
// answers have their counts recorded, the mean examples in the prompt and
// the mean selected but left out for length.
type ShotStats struct {
	Answers     int     `json:"answers"`
	MeanShots   float64 `json:"mean_shots"`
	MeanLeftOut float64 `json:"mean_left_out"`
}

// add counts one answer's prompt (unknown counts, −1, are skipped).
func (st *ShotStats) add(shots, out int) {
	if shots < 0 || out < 0 {
		return
	}
	n := float64(st.Answers)
	st.MeanShots = (st.MeanShots*n + float64(shots)) / (n + 1)
	st.MeanLeftOut = (st.MeanLeftOut*n + float64(out)) / (n + 1)
	st.Answers++
}

func (s *Server) results(ctx context.Context, id string) (store.Study, []store.Vote, Results, error) {
	st, err := s.cfg.Store.Study(ctx, id)
	if err != nil {
		return st, nil, Results{}, err
	}
	votes, err := s.cfg.Store.Votes(ctx, id, "")
	if err != nil {
		return st, nil, Results{}, err
	}
	return st, votes, summarize(st, votes), nil
}

// summarize computes the win rate of SystemA with a Wilson 95% interval and
// the one-sided exact binomial p-value against "no preference" (p = 1/2).
func summarize(st store.Study, votes []store.Vote) Results {
	res := Results{Study: st.ID, Name: st.Name, SystemA: st.SystemA, SystemB: st.SystemB, Votes: len(votes)}
	people := map[string]bool{}
	for _, v := range votes {
		people[v.User] = true
		if v.Winner == st.SystemA {
			res.WinsA++
		}
		a, b := &res.ShotsA, &res.ShotsB
		if v.Left != st.SystemA {
			a, b = b, a
		}
		a.add(v.LeftShots, v.LeftOut)
		b.add(v.RightShots, v.RightOut)
	}
	res.Participants = len(people)
	if res.Votes > 0 {
		res.WinRate = float64(res.WinsA) / float64(res.Votes)
	}
	res.Low95, res.High95 = Wilson(res.WinsA, res.Votes, z95)
	res.PValue = BinomialUpperP(res.WinsA, res.Votes)
	return res
}

// apiStudyResults: GET /api/studies/{id}/results (admin).
func (s *Server) apiStudyResults(w http.ResponseWriter, r *http.Request) {
	_, _, res, err := s.results(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found_error", "no study "+strconv.Quote(r.PathValue("id")))
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// studyCSV: one row per vote (admin; API and web).
func (s *Server) studyCSV(w http.ResponseWriter, r *http.Request) {
	st, votes, _, err := s.results(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no such study", http.StatusNotFound)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="study-`+st.ID+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"study", "participant", "question_index", "question", "left_system", "right_system", "winner", "winner_is_a", "created",
		"left_shots", "left_shots_left_out", "right_shots", "right_shots_left_out"})
	count := func(n int) string { // empty when not recorded
		if n < 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	for _, v := range votes {
		q := ""
		if v.Question >= 0 && v.Question < len(st.Questions) {
			q = st.Questions[v.Question]
		}
		right := st.SystemA
		if v.Left == st.SystemA {
			right = st.SystemB
		}
		cw.Write([]string{st.ID, v.User, strconv.Itoa(v.Question), csvSafe(q), v.Left, right, v.Winner,
			strconv.FormatBool(v.Winner == st.SystemA), v.Created.Format(time.RFC3339),
			count(v.LeftShots), count(v.LeftOut), count(v.RightShots), count(v.RightOut)})
	}
	cw.Flush()
}

// csvSafe defuses cells a spreadsheet would run as formulas (OWASP "CSV Injection").
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
