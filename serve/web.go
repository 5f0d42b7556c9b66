package serve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fspo/store"
)

//go:embed templates/*.html
var templateFS embed.FS

const (
	sessionCookie = "fspo_session"
	csrfCookie    = "fspo_csrf"
)

// pages are the parsed templates, one set per page (each with the layout).
type pages struct{ t map[string]*template.Template }

func loadPages() (*pages, error) {
	funcs := template.FuncMap{"pct": func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", n, err)
		}
		p.t[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return p, nil
}

// pageData is what every page template sees; Data is the page's own.
type pageData struct {
	Title string
	CSRF  string
	User  *store.User
	Admin bool
	Flash string
	Error string
	Data  any
}

// session is who a web request comes from.
type session struct {
	user  *store.User
	admin bool
	csrf  string
	// sessionHash identifies the stored session (nil when signed out).
	sessionHash []byte
}

func (s *Server) webRoutes() {
	m := s.mux
	m.HandleFunc("GET /{$}", s.page(s.home))
	m.HandleFunc("POST /signin", s.form(s.signin))
	m.HandleFunc("POST /signout", s.form(s.signout))
	m.HandleFunc("GET /label", s.page(s.needUser(s.labelPage)))
	m.HandleFunc("POST /label", s.form(s.needUser(s.labelPost)))
	m.HandleFunc("GET /ask", s.page(s.needUser(s.askPage)))
	m.HandleFunc("POST /ask", s.form(s.needUser(s.askPage)))
	m.HandleFunc("POST /description", s.form(s.needUser(s.descriptionPost)))
	m.HandleFunc("GET /prefs", s.page(s.needUser(s.prefsPage)))
	m.HandleFunc("POST /prefs/{id}/delete", s.form(s.needUser(s.prefDelete)))
	m.HandleFunc("POST /account/delete", s.form(s.needUser(s.accountDelete)))
	m.HandleFunc("GET /studies", s.page(s.studiesPage))
	m.HandleFunc("POST /studies", s.form(s.needAdmin(s.studyCreate)))
	m.HandleFunc("GET /study/{id}", s.page(s.needUser(s.studyPage)))
	m.HandleFunc("POST /study/{id}/vote", s.form(s.needUser(s.studyVote)))
	m.HandleFunc("GET /study/{id}/results", s.page(s.needAdmin(s.resultsPage)))
	m.HandleFunc("GET /study/{id}/results.csv", s.page(s.needAdmin(func(w http.ResponseWriter, r *http.Request, _ *session) {
		s.studyCSV(w, r)
	})))
}

type webHandler func(w http.ResponseWriter, r *http.Request, ss *session)

// page resolves the session of a GET page and makes sure a CSRF cookie exists.
func (s *Server) page(h webHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, err := s.session(w, r)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		securityHeaders(w)
		if s.secure(r) {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		h(w, r, ss)
	}
}

// form is page for POSTs: it also checks the CSRF token (double-submit
// cookie) and, when sent, that Origin is this host.
func (s *Server) form(h webHandler) http.HandlerFunc {
	return s.page(func(w http.ResponseWriter, r *http.Request, ss *session) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			if bodyReadFailure(w, err) {
				return
			}
			status := http.StatusBadRequest
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				status = http.StatusRequestEntityTooLarge
			}
			s.message(w, r, ss, status, "Form refused", "The form could not be read: "+err.Error())
			return
		}
		sent := r.PostForm.Get("csrf")
		if origin := r.Header.Get("Origin"); origin != "" {
			if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
				s.message(w, r, ss, http.StatusForbidden, "Form refused", "This form was sent from another site; it was refused.")
				return
			}
		}
		if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(ss.csrf)) != 1 {
			s.message(w, r, ss, http.StatusForbidden, "Form expired", "The form's security token is missing or stale: reload the page and try again.")
			return
		}
		h(w, r, ss)
	})
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	// the pages show one person's preferences and answers: never cache them
	h.Set("Cache-Control", "no-store")
}

// secure reports whether the client reached the server over HTTPS: TLS
// here, --secure-cookies (a TLS-terminating proxy in front), or
// X-Forwarded-Proto: https from a trusted proxy's address.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil || s.cfg.SecureCookies {
		return true
	}
	return r.Header.Get("X-Forwarded-Proto") == "https" && s.trustedProxy(clientIP(r))
}

func (s *Server) cookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) (*session, error) {
	ss := &session{}
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		ss.csrf = c.Value
	} else {
		ss.csrf = newID("")
		ss.csrf += newID("")
		s.cookie(w, r, csrfCookie, ss.csrf, 0)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 200 {
		return ss, nil
	}
	// The cookie holds a random session id, stored only as its SHA-256; the
	// API token never leaves the sign-in form.
	se, err := s.cfg.Store.SessionByHash(r.Context(), HashToken(c.Value), s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return ss, nil // expired or revoked: signed out
	}
	if err != nil {
		return nil, err
	}
	ss.sessionHash = se.Hash
	if se.Admin {
		ss.admin = true
		setLogUser(r, "admin")
		return ss, nil
	}
	u, err := s.cfg.Store.UserByID(r.Context(), se.User)
	if errors.Is(err, store.ErrNotFound) {
		return ss, nil
	}
	if err != nil {
		return nil, err
	}
	ss.user = &u
	setLogUser(r, u.ID)
	return ss, nil
}

// sessionTTL is how long a web sign-in lasts.
const sessionTTL = 30 * 24 * time.Hour

func (s *Server) needUser(h webHandler) webHandler {
	return func(w http.ResponseWriter, r *http.Request, ss *session) {
		if ss.user == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		h(w, r, ss)
	}
}

func (s *Server) needAdmin(h webHandler) webHandler {
	return func(w http.ResponseWriter, r *http.Request, ss *session) {
		if !ss.admin {
			s.render(w, r, ss, http.StatusForbidden, "message", "Forbidden", "This page is for the study administrator.")
			return
		}
		h(w, r, ss)
	}
}

// render executes a page into a buffer first, so a template error becomes a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, ss *session, status int, name, title string, data any) {
	pd := pageData{Title: title, CSRF: ss.csrf, User: ss.user, Admin: ss.admin, Data: data}
	switch r.URL.Query().Get("flash") {
	case "saved":
		pd.Flash = "Saved your preference."
	case "deleted":
		pd.Flash = "Deleted."
	case "created":
		pd.Flash = "Study created."
	case "description":
		pd.Flash = "Saved your description."
	}
	var buf bytes.Buffer
	if err := s.pages.t[name].ExecuteTemplate(&buf, "layout", pd); err != nil {
		s.internal(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) message(w http.ResponseWriter, r *http.Request, ss *session, status int, title, msg string) {
	s.render(w, r, ss, status, "message", title, msg)
}

// allowWeb applies the user's rate limit to pages that run the model.
func (s *Server) allowWeb(w http.ResponseWriter, r *http.Request, ss *session) bool {
	if wait := s.limits.reserve(ss.user.ID); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.message(w, r, ss, http.StatusTooManyRequests, "Slow down", "Too many requests; wait a moment and reload.")
		return false
	}
	return true
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, ss *session) {
	s.render(w, r, ss, http.StatusOK, "home", "Home", nil)
}

func (s *Server) signin(w http.ResponseWriter, r *http.Request, ss *session) {
	if !s.allowAttempt(w, r) {
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	se := store.Session{Admin: s.isAdmin(token), Expires: s.cfg.Now().Add(sessionTTL)}
	if !se.Admin {
		u, found, err := s.lookupUser(r.Context(), token)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if !found {
			s.message(w, r, ss, http.StatusUnauthorized, "Sign-in failed", "That token is not valid.")
			return
		}
		se.User = u.ID
	}
	id := newToken()
	se.Hash = HashToken(id)
	if err := s.cfg.Store.CreateSession(r.Context(), se); err != nil {
		s.internal(w, r, err)
		return
	}
	if ss.sessionHash != nil { // signing in over another session ends it
		if err := s.cfg.Store.DeleteSession(r.Context(), ss.sessionHash); err != nil {
			s.cfg.Logger.Warn("could not end the previous session at sign-in", "err", err)
		}
	}
	s.cookie(w, r, sessionCookie, id, int(sessionTTL/time.Second))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signout revokes the session on the server, then clears the cookie.
func (s *Server) signout(w http.ResponseWriter, r *http.Request, ss *session) {
	if ss.sessionHash != nil {
		if err := s.cfg.Store.DeleteSession(r.Context(), ss.sessionHash); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	s.cookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type labelData struct {
	Question, A, B, Study string
	Sig                   string // a study pair's signature (pairSignature)
	Step, Of, MaxChars    int
	Questions             []string
	// Pair is the id of a pair chosen for the user (choosePair), Strategy
	// and Gain how, Why why not actively.
	Pair, Strategy, Why string
	Gain                float64
	// Description is what the user told the model they like
	// (OwnDescription) or, for a COT model, its guess from their labels.
	Description    string
	OwnDescription bool
}

func (s *Server) labelPage(w http.ResponseWriter, r *http.Request, ss *session) {
	d := labelData{Question: strings.TrimSpace(r.URL.Query().Get("question")), Questions: s.cfg.Questions, MaxChars: s.cfg.MaxTextChars}
	if d.Question == "" {
		s.render(w, r, ss, http.StatusOK, "label", "Label", d)
		return
	}
	if msg := s.checkText("question", d.Question, true); msg != "" {
		s.message(w, r, ss, http.StatusBadRequest, "Question refused", msg)
		return
	}
	if !s.allowWeb(w, r, ss) {
		return
	}
	np, err := s.choosePair(r.Context(), ss.user.ID, d.Question, rand.Uint64())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.A, d.B, d.Pair, d.Strategy, d.Why, d.Gain = np.A, np.B, np.ID, np.Strategy, np.Why, np.Gain
	if d.Description, d.OwnDescription, err = s.believed(r.Context(), ss.user.ID); err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, ss, http.StatusOK, "label", "Label", d)
}

// believed is what the model is told or believes about the user: their own
// description, else a COT model's guess from their recent labels ("" for
// other models).
func (s *Server) believed(ctx context.Context, user string) (string, bool, error) {
	own, err := s.cfg.Store.Description(ctx, user)
	if err != nil || own != "" {
		return own, own != "", err
	}
	shots, err := s.selectShots(ctx, user, "recent", s.cfg.Shots, 0)
	if err != nil || len(shots) == 0 {
		return "", false, err
	}
	guess, err := s.cfg.Engine.Describe(ctx, shots)
	return guess, false, err
}

// labelPost stores the pick of a pair as a preference ("web", or "study:ID").
func (s *Server) labelPost(w http.ResponseWriter, r *http.Request, ss *session) {
	f := r.PostForm
	p := store.Preference{User: ss.user.ID, Prompt: f.Get("question"), Source: "web"}
	switch f.Get("pick") {
	case "a":
		p.Chosen, p.Rejected = f.Get("a"), f.Get("b")
	case "b":
		p.Chosen, p.Rejected = f.Get("b"), f.Get("a")
	default:
		s.message(w, r, ss, http.StatusBadRequest, "Bad form", `"pick" must be a or b`)
		return
	}
	next := "/label?flash=saved"
	if id := f.Get("study"); id != "" {
		st, err := s.cfg.Store.Study(r.Context(), id)
		if err != nil {
			s.message(w, r, ss, http.StatusBadRequest, "Bad form", "unknown study")
			return
		}
		labelled, err := s.cfg.Store.CountPreferences(r.Context(), ss.user.ID, "study:"+id)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		want := s.pairSignature(st.ID, ss.user.ID, labelled+1, p.Prompt, f.Get("a"), f.Get("b"))
		if labelled >= st.Pairs || !hmac.Equal([]byte(f.Get("sig")), []byte(want)) {
			s.message(w, r, ss, http.StatusBadRequest, "Label refused",
				"This is not the pair the study showed you at this step (or the step is done). Open the study page again.")
			return
		}
		p.Source = "study:" + id
		next = "/study/" + url.PathEscape(id)
	}
	var status int
	var msg string
	var err error
	if id := f.Get("pair"); id != "" && f.Get("study") == "" {
		_, status, msg, err = s.answerPair(r, ss.user.ID, id, f.Get("pick"), "")
	} else {
		_, status, msg, err = s.savePreference(r, p)
	}
	switch {
	case err != nil:
		s.internal(w, r, err)
	case status != 0:
		s.message(w, r, ss, status, "Preference refused", msg)
	default:
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

func (s *Server) prefsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	prefs, err := s.cfg.Store.Preferences(r.Context(), ss.user.ID, store.PrefQuery{})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, ss, http.StatusOK, "prefs", "My preferences", prefs)
}

func (s *Server) prefDelete(w http.ResponseWriter, r *http.Request, ss *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil && r.PostForm.Get("confirm") != "1" {
		// first ask: show the preference with a confirming form
		var p store.Preference
		if p, err = s.preferenceOf(r, ss.user.ID, id); err == nil {
			s.render(w, r, ss, http.StatusOK, "confirm", "Delete a preference", p)
			return
		}
	} else if err == nil {
		err = s.cfg.Store.DeletePreference(r.Context(), ss.user.ID, id)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) {
		s.internal(w, r, err)
		return
	}
	if err != nil {
		s.message(w, r, ss, http.StatusNotFound, "Not found", "No such preference of yours.")
		return
	}
	http.Redirect(w, r, "/prefs?flash=deleted", http.StatusSeeOther)
}

// preferenceOf finds preference id of user (store.ErrNotFound otherwise).
func (s *Server) preferenceOf(r *http.Request, user string, id int64) (store.Preference, error) {
	ps, err := s.cfg.Store.Preferences(r.Context(), user, store.PrefQuery{After: id - 1, First: 1})
	if err != nil {
		return store.Preference{}, err
	}
	if len(ps) == 0 || ps[0].ID != id {
		return store.Preference{}, store.ErrNotFound
	}
	return ps[0], nil
}

// accountDelete removes the signed-in user's account and all their data,
// after a confirmation page (like deleting a preference).
func (s *Server) accountDelete(w http.ResponseWriter, r *http.Request, ss *session) {
	if r.PostForm.Get("confirm") != "1" {
		s.render(w, r, ss, http.StatusOK, "confirm-account", "Delete your account", nil)
		return
	}
	if err := s.cfg.Store.DeleteUser(r.Context(), ss.user.ID); err != nil {
		s.internal(w, r, err)
		return
	}
	s.cfg.Logger.Info("user deleted their account", "user", ss.user.ID)
	s.cookie(w, r, sessionCookie, "", -1)
	s.render(w, r, &session{csrf: ss.csrf}, http.StatusOK, "message", "Account deleted",
		"Your account, your preferences and your study answers are deleted.")
}
