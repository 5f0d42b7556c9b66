//go:build !unix

package hub

import "context"

// lockBlob does nothing where flock is missing: concurrent downloads of one
// blob are then caught by the hash check only.
func (c Cache) lockBlob(context.Context, string, string) (func(), error) { return func() {}, nil }
