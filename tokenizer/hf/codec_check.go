package hf

import "fspo/tokenizer"

var _ tokenizer.Codec = (*Tokenizer)(nil)
