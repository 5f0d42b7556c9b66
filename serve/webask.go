package serve

import (
	"math/rand/v2"
	"net/http"
	"strings"
)

type askData struct {
	Question, Answer, Description string
	Personalize, Answered         bool
	OwnDescription                bool // the description is the user's, not the model's guess
	Shots, LeftOut, MaxChars      int
}

// descriptionPost: POST /description saves the user's correction of the
// description (empty: back to the model's guess) and returns to /ask.
func (s *Server) descriptionPost(w http.ResponseWriter, r *http.Request, ss *session) {
	text := strings.TrimSpace(r.PostForm.Get("description"))
	if msg := s.checkText("description", text, false); msg != "" {
		s.message(w, r, ss, http.StatusBadRequest, "Description refused", msg)
		return
	}
	if err := s.cfg.Store.SetDescription(r.Context(), ss.user.ID, text); err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/ask?flash=description", http.StatusSeeOther)
}

func (s *Server) askPage(w http.ResponseWriter, r *http.Request, ss *session) {
	d := askData{Personalize: true, MaxChars: s.cfg.MaxTextChars}
	own, err := s.cfg.Store.Description(r.Context(), ss.user.ID)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Description, d.OwnDescription = own, own != ""
	if r.Method == http.MethodPost {
		d.Question = strings.TrimSpace(r.PostForm.Get("question"))
		d.Personalize = r.PostForm.Get("personalize") == "1"
		if msg := s.checkText("question", d.Question, true); msg != "" {
			s.message(w, r, ss, http.StatusBadRequest, "Question refused", msg)
			return
		}
		if !s.allowWeb(w, r, ss) {
			return
		}
		req := AnswerRequest{Question: d.Question, Personalize: d.Personalize, MaxTokens: s.cfg.MaxTokens, Temperature: 1, TopP: 1, Seed: rand.Uint64()}
		if d.Personalize {
			shots, err := s.selectShots(r.Context(), ss.user.ID, s.cfg.Strategy, s.cfg.Shots, req.Seed)
			if err != nil {
				s.internal(w, r, err)
				return
			}
			req.Shots, req.Description = shots, own // the description read above
		}
		a, err := s.cfg.Engine.Answer(r.Context(), req)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		d.Answer, d.Shots, d.LeftOut, d.Answered = a.Text, a.Shots, len(req.Shots)-a.Shots, true
		if a.Description != "" {
			d.Description = a.Description
		}
	}
	s.render(w, r, ss, http.StatusOK, "ask", "Ask", d)
}
