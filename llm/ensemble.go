package llm

import (
	"context"
	"errors"
)

// Ensemble is the real client: one or more weighted endpoints behind shared
// limits, retries and accounting.
type Ensemble struct {
	cfg Config
}

var _ Client = (*Ensemble)(nil)

// New builds an Ensemble from a validated config.
func New(cfg Config) (*Ensemble, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Ensemble{cfg: cfg}, nil
}

// Complete sends req to the ensemble member drawn for it.
func (e *Ensemble) Complete(ctx context.Context, req Request) (Response, error) {
	return Response{}, errors.New("llm: not implemented")
}

// Embed embeds texts with the first endpoint that has an embedding model.
func (e *Ensemble) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return nil, ErrNoEmbeddings
}

// Route returns the ensemble member that will answer req.
func (e *Ensemble) Route(req Request) (endpoint, model string) { return "", "" }

// Stats returns the accounting so far.
func (e *Ensemble) Stats() Stats { return Stats{} }
