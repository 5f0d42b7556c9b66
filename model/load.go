package model

// Load reads a model checkpoint: the llama2.c format, or the project's own.
func Load(path string) (*Model, error) {
	return LoadLlama2C(path)
}
