// Package store keeps the server's durable state: users (by hashed token),
// their labelled preferences, studies and study votes. Store is the interface
// the server uses; the backends (store/sqlite, store/postgres) share the
// versioned migrations and the query code in this package and differ only in
// how they connect. A write returns only after its transaction committed.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a row does not exist or does not belong to the
// caller; the two cases are deliberately indistinguishable.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a row with the same key already exists.
var ErrConflict = errors.New("already exists")

// User is an account. Its bearer token is never stored, only its SHA-256.
type User struct {
	ID      string
	Name    string
	Created time.Time
}

// Preference is one labelled pair of one user: for Prompt, Chosen is
// preferred to Rejected. Source says where it came from ("api", "web",
// "study:ID").
type Preference struct {
	ID       int64
	User     string
	Prompt   string
	Chosen   string
	Rejected string
	Source   string
	Created  time.Time
	// IdempotencyKey, when set, is the client's key for this write, stored
	// with the row: a second AddPreference of the user with the same key
	// stores nothing and returns the first row with ErrReplay.
	IdempotencyKey string
}

// ErrReplay is returned with the stored row when AddPreference meets an
// idempotency key the user has already used.
var ErrReplay = errors.New("idempotency key already used")

// PrefQuery selects preferences of one user.
type PrefQuery struct {
	// Source, when set, keeps only preferences with that source.
	Source string
	// Last, when > 0, keeps only the Last most recent ones.
	Last int
	// After, when > 0, keeps only preferences whose ID is greater (a page's
	// cursor: IDs grow with insertion).
	After int64
	// Offset skips the Offset oldest (of those selected so far); First,
	// when > 0, then keeps only the First oldest. Last and First exclude
	// each other.
	Offset, First int
}

// Study is a blind side-by-side comparison of two systems: each participant
// first labels Pairs answer pairs (to LabelQuestions, or Questions when that
// is empty), then for each of Questions picks the better of the two systems'
// answers shown in random order.
type Study struct {
	ID             string
	Name           string
	Questions      []string
	LabelQuestions []string
	Pairs          int
	SystemA        string
	SystemB        string
	Created        time.Time
}

// Vote is one participant's pick for one study question.
type Vote struct {
	Study    string
	User     string
	Question int    // index into Study.Questions
	Left     string // the system whose answer was shown on the left
	Winner   string // the system whose answer was picked
	Created  time.Time
	// LeftShots and RightShots are the examples in the prompt of the answer
	// shown on each side (0 for an unpersonalized one); LeftOut and
	// RightOut the ones selected but left out for length. −1: not known
	// (votes from before they were recorded).
	LeftShots, LeftOut, RightShots, RightOut int
}

// Session is a signed-in web browser: the SHA-256 of its random cookie
// value (never the value itself), whose account (User, or Admin), and until
// when it is valid.
type Session struct {
	Hash    []byte
	User    string // "" for the admin
	Admin   bool
	Expires time.Time
}

// Store is the server's persistent state. Implementations are safe for
// concurrent use.
type Store interface {
	// CreateUser adds u, reachable by the SHA-256 tokenHash of its token.
	// ErrConflict when the id or hash already exists.
	CreateUser(ctx context.Context, u User, tokenHash []byte) error
	// UserByToken finds the user whose token hashes to tokenHash (ErrNotFound).
	UserByToken(ctx context.Context, tokenHash []byte) (User, error)
	// UserByID finds a user by id (ErrNotFound).
	UserByID(ctx context.Context, id string) (User, error)
	// SetToken replaces user's token hash: the old token stops working
	// (ErrNotFound for an unknown user, ErrConflict if the hash is taken).
	SetToken(ctx context.Context, user string, tokenHash []byte) error
	// DeleteUser removes user and all their data: preferences, votes and
	// sessions (ErrNotFound for an unknown user).
	DeleteUser(ctx context.Context, user string) error
	// SetDescription stores the user's own description of what they like
	// ("" removes it; ErrNotFound for an unknown user); Description reads
	// it ("" when there is none).
	SetDescription(ctx context.Context, user, text string) error
	Description(ctx context.Context, user string) (string, error)

	// CreateSession stores a web session.
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash finds a session valid at now (ErrNotFound when unknown
	// or expired).
	SessionByHash(ctx context.Context, hash []byte, now time.Time) (Session, error)
	// DeleteSession revokes a session (no error when it is already gone).
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteSessions revokes all of user's sessions ("" with admin: the admin's).
	DeleteSessions(ctx context.Context, user string, admin bool) error

	// AddPreference stores p (its ID and Created are assigned) and returns it.
	AddPreference(ctx context.Context, p Preference) (Preference, error)
	// Preferences lists user's preferences, oldest first.
	Preferences(ctx context.Context, user string, q PrefQuery) ([]Preference, error)
	// CountPreferences counts user's preferences with the given source ("" = all).
	CountPreferences(ctx context.Context, user, source string) (int, error)
	// DeletePreference removes preference id if it belongs to user;
	// otherwise ErrNotFound.
	DeletePreference(ctx context.Context, user string, id int64) error

	// CreateStudy adds s (ErrConflict when the id exists).
	CreateStudy(ctx context.Context, s Study) error
	// Study returns one study (ErrNotFound).
	Study(ctx context.Context, id string) (Study, error)
	// Studies lists all studies, oldest first.
	Studies(ctx context.Context) ([]Study, error)
	// AddVote stores v; ErrConflict when that user already voted on that question.
	AddVote(ctx context.Context, v Vote) error
	// Votes lists a study's votes, of one user when user != "", in insertion order.
	Votes(ctx context.Context, study, user string) ([]Vote, error)

	// Close releases the connections.
	Close() error
}
