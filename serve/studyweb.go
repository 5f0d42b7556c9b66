package serve

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"fspo/store"
)

type studiesData struct {
	Studies []store.Study
	Admin   bool
	Engines string
	// Done marks the studies the signed-in participant has finished.
	Done map[string]bool
}

func (s *Server) studiesPage(w http.ResponseWriter, r *http.Request, ss *session) {
	if ss.user == nil && !ss.admin {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	sts, err := s.cfg.Store.Studies(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d := studiesData{Studies: sts, Admin: ss.admin, Engines: strings.Join(s.engineNames(), ", "), Done: map[string]bool{}}
	if ss.user != nil {
		for _, st := range sts {
			votes, err := s.cfg.Store.Votes(r.Context(), st.ID, ss.user.ID)
			if err != nil {
				s.internal(w, r, err)
				return
			}
			d.Done[st.ID] = len(votes) >= len(st.Questions)
		}
	}
	s.render(w, r, ss, http.StatusOK, "studies", "Studies", d)
}

func (s *Server) studyCreate(w http.ResponseWriter, r *http.Request, ss *session) {
	f := r.PostForm
	pairs, err := strconv.Atoi(strings.TrimSpace(f.Get("pairs")))
	if err != nil {
		s.message(w, r, ss, http.StatusBadRequest, "Study refused", "pairs must be a whole number")
		return
	}
	st, msg := s.newStudy(studyInput{Name: f.Get("name"), Questions: strings.Split(f.Get("questions"), "\n"),
		LabelQuestions: strings.Split(f.Get("label_questions"), "\n"), Pairs: pairs,
		Systems: [2]string{strings.TrimSpace(f.Get("system_a")), strings.TrimSpace(f.Get("system_b"))}})
	if msg != "" {
		s.message(w, r, ss, http.StatusBadRequest, "Study refused", msg)
		return
	}
	if err := s.cfg.Store.CreateStudy(r.Context(), st); err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/studies?flash=created", http.StatusSeeOther)
}

type compareData struct {
	ID, Name, Question, Left, Right string
	Index, Step, Of                 int
	// Shots are the two prompts' shot counts, sealed (sealShots): the vote
	// records them for the admin's results.
	Shots string
}

// studyProgress loads the study of the request's path and counts the pairs
// the session's user has labelled for it; on failure it answers (404 or
// 500) itself and returns false.
func (s *Server) studyProgress(w http.ResponseWriter, r *http.Request, ss *session) (st store.Study, labelled int, ok bool) {
	ctx := r.Context()
	st, err := s.cfg.Store.Study(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.message(w, r, ss, http.StatusNotFound, "Not found", "No such study.")
		return st, 0, false
	}
	if err != nil {
		s.internal(w, r, err)
		return st, 0, false
	}
	if labelled, err = s.cfg.Store.CountPreferences(ctx, ss.user.ID, "study:"+st.ID); err != nil {
		s.internal(w, r, err)
		return st, 0, false
	}
	return st, labelled, true
}

// studyPage walks a participant through a study: first the labelling pairs,
// then each question's two answers (systems in a per-participant random
// order, unlabelled), then a thank-you page.
func (s *Server) studyPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	st, labelled, ok := s.studyProgress(w, r, ss)
	if !ok {
		return
	}
	user := ss.user.ID
	if labelled < st.Pairs {
		if !s.allowWeb(w, r, ss) {
			return
		}
		d := labelData{Question: labelQuestion(st, labelled), Study: st.ID, Step: labelled + 1, Of: st.Pairs}
		var err error
		d.A, d.B, err = s.cfg.Engine.Pair(ctx, d.Question, s.studySeed("pair", st.ID, user, strconv.Itoa(labelled)))
		if err != nil {
			s.internal(w, r, err)
			return
		}
		d.Sig = s.pairSignature(st.ID, user, d.Step, d.Question, d.A, d.B)
		s.render(w, r, ss, http.StatusOK, "label", st.Name, d)
		return
	}
	votes, err := s.cfg.Store.Votes(ctx, st.ID, user)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	done := map[int]bool{}
	for _, v := range votes {
		done[v.Question] = true
	}
	q := -1
	for i := range st.Questions {
		if !done[i] {
			q = i
			break
		}
	}
	if q < 0 {
		s.render(w, r, ss, http.StatusOK, "done", st.Name, st.Name)
		return
	}
	if !s.allowWeb(w, r, ss) {
		return
	}
	left, right := s.leftSystem(st, user, q)
	d := compareData{ID: st.ID, Name: st.Name, Question: st.Questions[q], Index: q, Step: len(done) + 1, Of: len(st.Questions)}
	// Both systems answer with the same seed; the two generations run concurrently.
	seed := s.studySeed("answer", st.ID, user, strconv.Itoa(q))
	g, gctx := errgroup.WithContext(ctx)
	var la, ra studyAnswer
	g.Go(func() (err error) { la, err = s.answerAs(gctx, left, user, d.Question, seed); return })
	g.Go(func() (err error) { ra, err = s.answerAs(gctx, right, user, d.Question, seed); return })
	if err := g.Wait(); err != nil {
		s.internal(w, r, err)
		return
	}
	d.Left, d.Right = la.Text, ra.Text
	counts := shotCounts{la.Shots, la.LeftOut, ra.Shots, ra.LeftOut}
	d.Shots = s.sealShots(st.ID, user, q, counts)
	s.render(w, r, ss, http.StatusOK, "compare", st.Name, d)
}

// studyVote records a pick; which system was on which side is recomputed
// on the server, so the form carries only the question and the side.
func (s *Server) studyVote(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	st, labelled, ok := s.studyProgress(w, r, ss)
	if !ok {
		return
	}
	q, err := strconv.Atoi(r.PostForm.Get("q"))
	if err != nil || q < 0 || q >= len(st.Questions) {
		s.message(w, r, ss, http.StatusBadRequest, "Bad vote", "unknown question")
		return
	}
	if labelled < st.Pairs {
		s.message(w, r, ss, http.StatusConflict, "Not yet", "Label the study's pairs before comparing answers.")
		return
	}
	left, right := s.leftSystem(st, ss.user.ID, q)
	v := store.Vote{Study: st.ID, User: ss.user.ID, Question: q, Left: left, Created: s.cfg.Now(), LeftShots: -1, LeftOut: -1, RightShots: -1, RightOut: -1}
	if c, ok := s.openShots(r.PostForm.Get("shots"), st.ID, ss.user.ID, q); ok {
		v.LeftShots, v.LeftOut, v.RightShots, v.RightOut = c[0], c[1], c[2], c[3]
	}
	switch r.PostForm.Get("side") {
	case "left":
		v.Winner = left
	case "right":
		v.Winner = right
	default:
		s.message(w, r, ss, http.StatusBadRequest, "Bad vote", `"side" must be left or right`)
		return
	}
	if err := s.cfg.Store.AddVote(ctx, v); err != nil && !errors.Is(err, store.ErrConflict) {
		s.internal(w, r, err)
		return
	}
	// A repeated vote (a double click) keeps the first one.
	http.Redirect(w, r, "/study/"+url.PathEscape(st.ID), http.StatusSeeOther)
}

type questionResult struct {
	Index        int
	Question     string
	Votes, WinsA int
}

func (s *Server) resultsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	st, votes, res, err := s.results(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.message(w, r, ss, http.StatusNotFound, "Not found", "No such study.")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	qs := make([]questionResult, len(st.Questions))
	for i, q := range st.Questions {
		qs[i] = questionResult{Index: i + 1, Question: q}
	}
	for _, v := range votes {
		if v.Question >= 0 && v.Question < len(qs) {
			qs[v.Question].Votes++
			if v.Winner == st.SystemA {
				qs[v.Question].WinsA++
			}
		}
	}
	s.render(w, r, ss, http.StatusOK, "results", "Results", struct {
		R         Results
		Questions []questionResult
	}{res, qs})
}
