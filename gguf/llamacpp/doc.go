// Package llamacpp holds the tests that check the gguf package against
// llama.cpp itself (release v0.5.0 libraries from npm
// @node-llama-cpp/linux-x64@3.22.1, loaded by github.com/hybridgroup/yzma
// v1.28.0 without cgo). It is a module of its own (go.mod here, replacing
// fspo with ../..), so neither yzma nor its requirements enter the fspo
// module's dependencies; run it with `cd gguf/llamacpp && go test .`.
//
// The libraries are found in $FSPO_LLAMACPP_LIB (set it with
// `export FSPO_LLAMACPP_LIB=$(.ci/llamacpp.sh)`), else in the cache folder
// .ci/llamacpp.sh fills. Without them the tests skip, except under CI
// (the CI environment variable set), where they fail.
//
// The program in speed/ times fspo and llama.cpp side by side on one GGUF
// file (greedy decoding at batch 1 and a 512-token prefill, F32, F16, BF16
// or Q8_0 weights, 1 and 2 threads); see its doc comment.
//
// `go test . -update` (in this folder) also rewrites the goldens in
// gguf/testdata/llamacpp/, which the gguf package's own tests compare the
// engine with when llama.cpp is not at hand.
package llamacpp
