package serve

import "context"

// Engine answers questions with a (personalized) language model.
// Implementations must be safe for concurrent use.
type Engine interface {
	// Answer generates a reply to Question. With Personalize, Shots (the
	// user's labelled preferences, oldest first) become the few-shot
	// context; otherwise the reply is the base (zero-shot) behaviour. Stream,
	// when set, receives text pieces as they are generated. Description is
	// the model's inferred user description (COT models), or "".
	Answer(ctx context.Context, req AnswerRequest) (Answer, error)
	// Pair samples two answers to Question made to differ (as the synthesis
	// does: persona steering, temperature), for labelling.
	Pair(ctx context.Context, question string, seed uint64) (a, b string, err error)
	// Describe returns the model's description of a user from their shots
	// ("" when the model has no COT stage).
	Describe(ctx context.Context, shots []Shot) (string, error)
	Name() string
}

// Shot is one labelled preference used as a few-shot example.
type Shot struct{ Prompt, Chosen, Rejected string }

// AnswerRequest is one generation.
type AnswerRequest struct {
	Question    string
	Shots       []Shot
	Personalize bool
	MaxTokens   int
	Temperature float32
	TopP        float32
	Seed        uint64
	// Stop lists up to 4 texts that end the answer (OpenAI's "stop"): the
	// answer is cut before the first one, which is not part of it nor
	// streamed, and FinishReason is "stop" (see StopScanner).
	Stop []string
	// Stream, when set, receives each generated piece of text; an error
	// from it stops the generation.
	Stream func(piece string) error
	// Description is the user's own description of what they like (their
	// correction of the model's): a COT model conditions its answer on it
	// instead of writing its own guess. "" for none.
	Description string
}

// Answer is a generated reply.
type Answer struct {
	Text         string
	Description  string
	PromptTokens int
	// CompletionTokens counts the generated tokens.
	CompletionTokens int
	// FinishReason is "stop" (end of sequence or a stop text) or "length"
	// (MaxTokens reached).
	FinishReason string
	// Shots is how many of the request's shots are in the prompt: the
	// oldest are left out when they do not fit the model's context.
	Shots int
}
