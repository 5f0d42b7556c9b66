// Package stories260k carries the default base model, llama2.c's stories260K
// checkpoint and its tokenizer (MIT licence, see LICENSE), inside the fspo
// binary, so that a fresh machine needs no download.
package stories260k

import "embed"

// Name is the model's name in the model search path.
const Name = "stories260K"

// File names of the checkpoint and the tokenizer, as published upstream.
const (
	CheckpointFile = "stories260K.bin"
	TokenizerFile  = "tok512.bin"
)

// FS holds CheckpointFile and TokenizerFile at its root.
//
//go:embed stories260K.bin tok512.bin
var FS embed.FS
