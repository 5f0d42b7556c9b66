package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Conn is the little a backend must provide: parameterised SQL with $1-style
// placeholders (both SQLite and PostgreSQL accept them) and transactions.
type Conn interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query; the caller closes the rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// Tx runs fn in one transaction, committing when fn returns nil and
	// rolling back otherwise. It returns only after the commit finished.
	Tx(ctx context.Context, fn func(tx Conn) error) error
}

// scanner reads the current row into dest.
type scanner interface{ Scan(dest ...any) error }

// Rows is a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// ReleaseOnClose is r that, once closed, also runs release, once however
// often it is closed: a backend's way to give back the connection or lock
// the rows hold. A nil release leaves r as it is.
func ReleaseOnClose(r Rows, release func()) Rows {
	if release == nil {
		return r
	}
	return &releasingRows{Rows: r, release: release}
}

type releasingRows struct {
	Rows
	release func()
	once    sync.Once
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	r.once.Do(r.release)
}

// SQL implements Store on top of a backend's Conn.
type SQL struct {
	c     Conn
	d     Dialect
	close func() error
}

var _ Store = (*SQL)(nil)

// Open migrates the database behind c to the newest schema and returns the
// store. closeFn releases the backend's connections.
func Open(ctx context.Context, c Conn, d Dialect, closeFn func() error) (*SQL, error) {
	if err := migrate(ctx, c, d); err != nil {
		return nil, fmt.Errorf("migrate %s database: %w", d.Name, err)
	}
	return &SQL{c: c, d: d, close: closeFn}, nil
}

// Close releases the backend's connections.
func (s *SQL) Close() error { return s.close() }

// queryAll scans every row of a query with scan.
func queryAll[T any](ctx context.Context, c Conn, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// queryRow scans the single row of a query; ErrNotFound when there is none.
func queryRow(ctx context.Context, c Conn, query string, args []any, dest ...any) error {
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return ErrNotFound
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

func (s *SQL) conflict(err error) error {
	if err != nil && s.d.IsConflict != nil && s.d.IsConflict(err) {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// CreateUser implements Store.
func (s *SQL) CreateUser(ctx context.Context, u User, tokenHash []byte) error {
	if u.ID == "" || len(tokenHash) == 0 {
		return errors.New("create user: empty id or token hash")
	}
	if err := checkTexts("id", u.ID, "name", u.Name); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	_, err := s.c.Exec(ctx, `INSERT INTO users (id, name, token_hash, created) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Name, tokenHash, micros(u.Created))
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, s.conflict(err))
	}
	return nil
}

// UserByToken implements Store.
func (s *SQL) UserByToken(ctx context.Context, tokenHash []byte) (User, error) {
	var u User
	var created int64
	err := queryRow(ctx, s.c, `SELECT id, name, created FROM users WHERE token_hash = $1`, []any{tokenHash},
		&u.ID, &u.Name, &created)
	if err != nil {
		return User{}, fmt.Errorf("find user by token: %w", err)
	}
	u.Created = fromMicros(created)
	return u, nil
}

// UserByID implements Store.
func (s *SQL) UserByID(ctx context.Context, id string) (User, error) {
	var u User
	var created int64
	err := queryRow(ctx, s.c, `SELECT id, name, created FROM users WHERE id = $1`, []any{id}, &u.ID, &u.Name, &created)
	if err != nil {
		return User{}, fmt.Errorf("find user %s: %w", id, err)
	}
	u.Created = fromMicros(created)
	return u, nil
}

// SetToken implements Store.
func (s *SQL) SetToken(ctx context.Context, user string, tokenHash []byte) error {
	if len(tokenHash) == 0 {
		return errors.New("set token: empty token hash")
	}
	n, err := s.c.Exec(ctx, `UPDATE users SET token_hash = $1 WHERE id = $2`, tokenHash, user)
	return changed("set token of user "+user, n, s.conflict(err))
}

// DeleteUser implements Store: one transaction, the user's rows first (not
// relying on the backend's foreign-key cascade).
func (s *SQL) DeleteUser(ctx context.Context, user string) error {
	return s.c.Tx(ctx, func(tx Conn) error {
		for _, table := range []string{"votes", "preferences", "sessions"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, user); err != nil {
				return fmt.Errorf("delete user %s: %s: %w", user, table, err)
			}
		}
		n, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, user)
		return changed("delete user "+user, n, err)
	})
}

// SetDescription implements Store.
func (s *SQL) SetDescription(ctx context.Context, user, text string) error {
	if err := checkTexts("description", text); err != nil {
		return fmt.Errorf("set description of user %s: %w", user, err)
	}
	var v any // NULL for ""
	if text != "" {
		v = text
	}
	n, err := s.c.Exec(ctx, `UPDATE users SET description = $1 WHERE id = $2`, v, user)
	return changed("set description of user "+user, n, err)
}

// Description implements Store.
func (s *SQL) Description(ctx context.Context, user string) (string, error) {
	var d *string
	if err := queryRow(ctx, s.c, `SELECT description FROM users WHERE id = $1`, []any{user}, &d); err != nil {
		return "", fmt.Errorf("description of user %s: %w", user, err)
	}
	if d == nil {
		return "", nil
	}
	return *d, nil
}

// CreateSession implements Store.
func (s *SQL) CreateSession(ctx context.Context, se Session) error {
	if len(se.Hash) == 0 || (se.User == "") != se.Admin {
		return errors.New("create session: want a hash and either a user or admin")
	}
	admin := 0
	if se.Admin {
		admin = 1
	}
	_, err := s.c.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, admin, expires) VALUES ($1, $2, $3, $4)`,
		se.Hash, se.User, admin, micros(se.Expires))
	if err != nil {
		return fmt.Errorf("create session: %w", s.conflict(err))
	}
	return nil
}

// SessionByHash implements Store.
func (s *SQL) SessionByHash(ctx context.Context, hash []byte, now time.Time) (Session, error) {
	se := Session{Hash: hash}
	var admin int
	var expires int64
	err := queryRow(ctx, s.c, `SELECT user_id, admin, expires FROM sessions WHERE id_hash = $1 AND expires > $2`,
		[]any{hash, micros(now)}, &se.User, &admin, &expires)
	if err != nil {
		return Session{}, fmt.Errorf("find session: %w", err)
	}
	se.Admin, se.Expires = admin == 1, fromMicros(expires)
	return se, nil
}

// DeleteSession implements Store.
func (s *SQL) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.c.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteSessions implements Store.
func (s *SQL) DeleteSessions(ctx context.Context, user string, admin bool) error {
	a := 0
	if admin {
		a = 1
	}
	if _, err := s.c.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND admin = $2`, user, a); err != nil {
		return fmt.Errorf("delete sessions of %q: %w", user, err)
	}
	return nil
}

// AddPreference implements Store.
func (s *SQL) AddPreference(ctx context.Context, p Preference) (Preference, error) {
	if err := checkTexts("prompt", p.Prompt, "chosen", p.Chosen, "rejected", p.Rejected, "source", p.Source); err != nil {
		return Preference{}, fmt.Errorf("add preference of user %s: %w", p.User, err)
	}
	if p.Created.IsZero() {
		p.Created = time.Now()
	}
	var key any // NULL without a key
	if p.IdempotencyKey != "" {
		key = p.IdempotencyKey
	}
	err := queryRow(ctx, s.c, `INSERT INTO preferences (user_id, prompt, chosen, rejected, source, created, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id`,
		[]any{p.User, p.Prompt, p.Chosen, p.Rejected, p.Source, micros(p.Created), key}, &p.ID)
	if errors.Is(err, ErrNotFound) && p.IdempotencyKey != "" {
		// no row inserted: the key was used before; return what it stored
		first, ferr := s.preferenceByKey(ctx, p.User, p.IdempotencyKey)
		if ferr != nil {
			return Preference{}, fmt.Errorf("add preference of user %s: %w", p.User, ferr)
		}
		return first, fmt.Errorf("add preference of user %s: key %q: %w", p.User, p.IdempotencyKey, ErrReplay)
	}
	if err != nil {
		return Preference{}, fmt.Errorf("add preference of user %s: %w", p.User, err)
	}
	p.Created = fromMicros(micros(p.Created))
	return p, nil
}

// preferenceByKey reads the preference user stored with an idempotency key.
func (s *SQL) preferenceByKey(ctx context.Context, user, key string) (Preference, error) {
	var p Preference
	var created int64
	err := queryRow(ctx, s.c, `SELECT id, user_id, prompt, chosen, rejected, source, created, idempotency_key FROM preferences
		WHERE user_id = $1 AND idempotency_key = $2`, []any{user, key},
		&p.ID, &p.User, &p.Prompt, &p.Chosen, &p.Rejected, &p.Source, &created, &p.IdempotencyKey)
	p.Created = fromMicros(created)
	return p, err
}

// Preferences implements Store.
func (s *SQL) Preferences(ctx context.Context, user string, q PrefQuery) ([]Preference, error) {
	if q.Last > 0 && (q.First > 0 || q.Offset > 0) {
		return nil, fmt.Errorf("list preferences of user %s: Last and First/Offset together", user)
	}
	query := `SELECT id, user_id, prompt, chosen, rejected, source, created, COALESCE(idempotency_key, '') FROM preferences
		WHERE user_id = $1 AND ($2 = '' OR source = $2) AND id > $3`
	args := []any{user, q.Source, q.After}
	oldestFirst := q.First > 0 || q.Offset > 0
	switch {
	case q.Last > 0:
		query += ` ORDER BY id DESC LIMIT $4`
		args = append(args, q.Last)
	case oldestFirst:
		limit := int64(q.First)
		if limit <= 0 {
			limit = math.MaxInt64
		}
		query += ` ORDER BY id ASC LIMIT $4 OFFSET $5`
		args = append(args, limit, q.Offset)
	default:
		query += ` ORDER BY id DESC`
	}
	out, err := queryAll(ctx, s.c, query, args, func(rows scanner) (p Preference, err error) {
		var created int64
		err = rows.Scan(&p.ID, &p.User, &p.Prompt, &p.Chosen, &p.Rejected, &p.Source, &created, &p.IdempotencyKey)
		p.Created = fromMicros(created)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list preferences of user %s: %w", user, err)
	}
	// Newest first from the query (so LIMIT keeps the most recent); callers get oldest first.
	if !oldestFirst {
		slices.Reverse(out)
	}
	return out, nil
}

// CountPreferences implements Store.
func (s *SQL) CountPreferences(ctx context.Context, user, source string) (int, error) {
	var n int
	err := queryRow(ctx, s.c, `SELECT COUNT(*) FROM preferences WHERE user_id = $1 AND ($2 = '' OR source = $2)`,
		[]any{user, source}, &n)
	if err != nil {
		return 0, fmt.Errorf("count preferences of user %s: %w", user, err)
	}
	return n, nil
}

// DeletePreference implements Store.
func (s *SQL) DeletePreference(ctx context.Context, user string, id int64) error {
	n, err := s.c.Exec(ctx, `DELETE FROM preferences WHERE id = $1 AND user_id = $2`, id, user)
	return changed(fmt.Sprintf("delete preference %d", id), n, err)
}

// changed is the outcome of a statement that must change a row: its error,
// or ErrNotFound when it changed none, prefixed with what it did.
func changed(what string, n int64, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case n == 0:
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// CreateStudy implements Store.
func (s *SQL) CreateStudy(ctx context.Context, st Study) error {
	texts := []string{"id", st.ID, "name", st.Name, "system_a", st.SystemA, "system_b", st.SystemB}
	for i, q := range st.Questions {
		texts = append(texts, fmt.Sprintf("questions[%d]", i), q)
	}
	for i, q := range st.LabelQuestions {
		texts = append(texts, fmt.Sprintf("label_questions[%d]", i), q)
	}
	if err := checkTexts(texts...); err != nil {
		return fmt.Errorf("create study: %w", err)
	}
	if st.Created.IsZero() {
		st.Created = time.Now()
	}
	qs, err := json.Marshal(nonNil(st.Questions))
	if err != nil {
		return fmt.Errorf("create study %s: %w", st.ID, err)
	}
	ls, err := json.Marshal(nonNil(st.LabelQuestions))
	if err != nil {
		return fmt.Errorf("create study %s: %w", st.ID, err)
	}
	_, err = s.c.Exec(ctx, `INSERT INTO studies (id, name, questions, label_questions, pairs, system_a, system_b, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		st.ID, st.Name, string(qs), string(ls), st.Pairs, st.SystemA, st.SystemB, micros(st.Created))
	if err != nil {
		return fmt.Errorf("create study %s: %w", st.ID, s.conflict(err))
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const studyColumns = `id, name, questions, label_questions, pairs, system_a, system_b, created`

func scanStudy(rows scanner) (Study, error) {
	var st Study
	var qs, ls string
	var created int64
	if err := rows.Scan(&st.ID, &st.Name, &qs, &ls, &st.Pairs, &st.SystemA, &st.SystemB, &created); err != nil {
		return Study{}, err
	}
	if err := json.Unmarshal([]byte(qs), &st.Questions); err != nil {
		return Study{}, fmt.Errorf("study %s: questions column: %w", st.ID, err)
	}
	if err := json.Unmarshal([]byte(ls), &st.LabelQuestions); err != nil {
		return Study{}, fmt.Errorf("study %s: label_questions column: %w", st.ID, err)
	}
	st.Created = fromMicros(created)
	return st, nil
}

// Study implements Store.
func (s *SQL) Study(ctx context.Context, id string) (Study, error) {
	sts, err := s.studies(ctx, `SELECT `+studyColumns+` FROM studies WHERE id = $1`, id)
	if err != nil {
		return Study{}, fmt.Errorf("study %s: %w", id, err)
	}
	if len(sts) == 0 {
		return Study{}, fmt.Errorf("study %s: %w", id, ErrNotFound)
	}
	return sts[0], nil
}

// Studies implements Store.
func (s *SQL) Studies(ctx context.Context) ([]Study, error) {
	sts, err := s.studies(ctx, `SELECT `+studyColumns+` FROM studies ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	return sts, nil
}

func (s *SQL) studies(ctx context.Context, query string, args ...any) ([]Study, error) {
	return queryAll(ctx, s.c, query, args, scanStudy)
}

// AddVote implements Store.
func (s *SQL) AddVote(ctx context.Context, v Vote) error {
	if v.Created.IsZero() {
		v.Created = time.Now()
	}
	_, err := s.c.Exec(ctx, `INSERT INTO votes (study_id, user_id, question, left_system, winner, created, left_shots, left_out, right_shots, right_out)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, v.Study, v.User, v.Question, v.Left, v.Winner, micros(v.Created),
		v.LeftShots, v.LeftOut, v.RightShots, v.RightOut)
	if err != nil {
		return fmt.Errorf("add vote of user %s in study %s question %d: %w", v.User, v.Study, v.Question, s.conflict(err))
	}
	return nil
}

// Votes implements Store.
func (s *SQL) Votes(ctx context.Context, study, user string) ([]Vote, error) {
	out, err := queryAll(ctx, s.c, `SELECT study_id, user_id, question, left_system, winner, created, left_shots, left_out, right_shots, right_out
		FROM votes WHERE study_id = $1 AND ($2 = '' OR user_id = $2) ORDER BY created, user_id, question`, []any{study, user},
		func(rows scanner) (v Vote, err error) {
			var created int64
			err = rows.Scan(&v.Study, &v.User, &v.Question, &v.Left, &v.Winner, &created, &v.LeftShots, &v.LeftOut, &v.RightShots, &v.RightOut)
			v.Created = fromMicros(created)
			return v, err
		})
	if err != nil {
		return nil, fmt.Errorf("list votes of study %s: %w", study, err)
	}
	return out, nil
}
