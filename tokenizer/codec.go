package tokenizer

// Codec is what every tokenizer fspo runs satisfies: the llama2.c
// SentencePiece file (through Llama2C), Hugging Face tokenizer.json files
// (package tokenizer/hf) and vocabularies read from GGUF metadata (built with
// hf.NewBPE from the same raw vocabulary and merges).
//
// Encode turns text into token ids; addSpecial adds the tokens the
// tokenizer's post-processor (or add_bos_token) asks for, such as BOS.
// Special tokens written literally in the text are recognized either way.
// DecodeIDs turns ids back into text; skipSpecial leaves out special tokens.
type Codec interface {
	Encode(text string, addSpecial bool) []int
	DecodeIDs(ids []int, skipSpecial bool) string
	// BOS and EOS are the beginning/end-of-sequence ids, -1 when absent.
	BOS() int
	EOS() int
	VocabSize() int
	// ID returns the id of a token string; Piece its string.
	ID(piece string) (int, bool)
	Piece(id int) string
}

// llama2c adapts the llama2.c Tokenizer to Codec.
type llama2c struct{ *Tokenizer }

// Llama2C returns t as a Codec: BOS is 1 and EOS is 2, as in llama2.c.
func Llama2C(t *Tokenizer) Codec { return llama2c{t} }

func (l llama2c) Encode(text string, addSpecial bool) []int {
	return l.Tokenizer.Encode(text, addSpecial, false)
}

func (l llama2c) DecodeIDs(ids []int, skipSpecial bool) string {
	if skipSpecial {
		kept := make([]int, 0, len(ids))
		for _, id := range ids {
			if id != 1 && id != 2 {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	return l.Tokenizer.DecodeAll(ids)
}

func (l llama2c) BOS() int { return 1 }
func (l llama2c) EOS() int { return 2 }
