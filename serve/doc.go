/*
Package serve is the personalization server: an OpenAI-compatible API whose
answers are personalized with the caller's stored preferences as few-shot
context (FSPO, arXiv 2502.19312), a preferences API, a small server-rendered
web app for labelling and asking, and a blind study mode comparing two systems.

Routes. JSON errors look like OpenAI's: {"error": {"message", "type"}}.

	GET    /healthz                          liveness, the default engine's name
	POST   /api/users                        admin: {"name"} → 201 {"id", "token"} (the token is shown once)
	POST   /api/preferences                  user: {"prompt", "chosen", "rejected"} → 201, after commit; or
	                                         {"pair": id, "choice": "a"|"b"} answering GET /api/next-pair (404 an
	                                         unknown, expired or other user's pair, 409 one answered already)
	GET    /api/next-pair                    user: ?question=Q (default: the configured questions in turn), ?seed=S
	                                         → {"id", "question", "a", "b", "strategy", "gain", "choice_ms"}: of
	                                         the pairs among 4 sampled answers, the one whose answer tells the most
	                                         about the caller (package elicit: expected information gain over
	                                         Config.Committee's plausible users, weighed by the caller's last 4
	                                         labels) — "strategy": "active"; with no committee or no ranking
	                                         model, two sampled answers ("random", "why" says which)
	GET    /api/preferences                  user: {"data": [...], "has_more", "next_after"}, own only, oldest first;
	                                         ?limit=N (default 100, at most 1000), ?after=ID (the cursor)
	DELETE /api/preferences/{id}             user: 204, or 404 (unknown or someone else's)
	GET    /api/me/description               user: {"description", "source", "shots"}: the user's own ("source":
	                                         "user") or the COT model's guess from their shots ("model")
	PUT    /api/me/description               user: {"description"} → 200: the user's own description, which a COT
	                                         model then answers from instead of its guess ("" removes it)
	POST   /api/me/token                     user: → 200 {"token"}: a new token; the old one stops working
	DELETE /api/me                           user: 204, the account and all its data removed
	DELETE /api/users/{id}                   admin: 204 (or 404), the account and all its data removed
	GET    /v1/models                        user: the engines
	POST   /api/rank                         user: {"prompt", "candidates": [...]} → {"data": [{"index", "text",
	                                         "reward"}, …] best first}: each candidate's implicit reward for the
	                                         caller, β·(log πθ − log πref) under the caller's few-shot prompt
	                                         (engines serving a preference-trained run: its reference model loaded)
	POST   /v1/chat/completions              user: OpenAI Chat Completions, "stream" as SSE
	POST   /v1/completions                   user: OpenAI Completions, "stream" as SSE
	POST   /api/studies                      admin: {"name", "questions", "label_questions", "pairs", "systems": [A, B]};
	                                         the POSTs of users, preferences and studies honour Idempotency-Key: a
	                                         retry replays the first answer (Idempotent-Replayed: true), the same
	                                         key with another body is 422 (a user's id and token are keyed hashes
	                                         of the key under the server's key, from the admin token: nothing but
	                                         the row is stored; once the token is rotated a replay is 409)
	GET    /api/studies/{id}/results         admin: win rate of A, Wilson 95% interval, one-sided exact binomial p
	GET    /api/studies/{id}/results.csv     admin: one row per vote

Completion extensions: "personalize" (default true), "shots" (0..64),
"shot_strategy" ("recent", "random", "all-fit"), "fspo": {"best_of": n} (n
answers, the one the caller's implicit reward ranks first returned, with
every reward in "fspo.rewards"; not streamed); "stop" (a string or up to 4)
is honoured, streamed or not. Responses carry "fspo": {"user_description",
"shots" (examples actually in the prompt), "shots_left_out" (selected but
not fitting the model's context), "personalized", "shot_strategy", "seed"}.

Web pages (server-side session: the cookie holds a random id stored hashed,
30 days, revoked at sign-out; CSRF token on every form): / (sign in), /label
(the pair of /api/next-pair's choice, and the description the model answers
from with its edit box),
/ask, /prefs (with account deletion), /studies, /study/{id} (participate),
/study/{id}/results and /study/{id}/results.csv (admin).

Limits: request bodies (413), text fields (400: too long, or not storable
text — invalid UTF-8, NUL or another control character but tab, newline and
carriage return), max_tokens (400), stored preferences per user (403),
requests per user per second (429 with Retry-After), sign-ins and failed
token checks per client address (429; behind a --trusted-proxy, the client
its X-Forwarded-For names), a body's arrival time (408; cut at
shutdown with 503). Tokens are random 256-bit strings stored as SHA-256 hashes;
the request log holds method, path, status, size, duration and user id only.
*/
package serve
