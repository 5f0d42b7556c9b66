module fspo/gguf/llamacpp

go 1.26.8

require (
	fspo v0.0.0
	github.com/hybridgroup/yzma v1.28.0
)

require (
	github.com/ebitengine/purego v0.10.0 // indirect
	github.com/jupiterrider/ffi v0.7.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)

replace fspo => ../..
