package llm

import (
	"context"
	"errors"
)

// Cache is the SQLite call cache.
type Cache struct{}

// NewCache opens (creating if needed) the cache database at path.
func NewCache(path string) (*Cache, error) { return nil, errors.New("llm: cache not implemented") }

// Close closes the database.
func (c *Cache) Close() error { return nil }

// Cached wraps c so that responses are read from and written to cache.
func Cached(c Client, cache *Cache) Client { return &cachedClient{inner: c, cache: cache} }

type cachedClient struct {
	inner Client
	cache *Cache
}

func (c *cachedClient) Complete(ctx context.Context, req Request) (Response, error) {
	return c.inner.Complete(ctx, req)
}

func (c *cachedClient) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return c.inner.Embed(ctx, texts)
}
