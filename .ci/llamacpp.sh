#!/usr/bin/env bash
# Fetch the llama.cpp libraries (release v0.5.0, prebuilt in npm
# @node-llama-cpp/linux-x64@3.22.1) that the gguf reference tests load, into a
# cache folder, and print the folder holding libllama.so. Idempotent.
#
#	export FSPO_LLAMACPP_LIB=$(.ci/llamacpp.sh)
set -euo pipefail
version=3.22.1
cache=${FSPO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fspo}/llamacpp-$version
lib=$cache/package/bins/linux-x64
if [ ! -e "$lib/libllama.so" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "@node-llama-cpp/linux-x64@$version" >/dev/null && tar xzf "node-llama-cpp-linux-x64-$version.tgz")
	rm -rf "$cache/package"
	mv "$tmp/package" "$cache/package"
	ln -sf libllama.v0.5.0.so "$lib/libllama.so"
	ln -sf libggml.v0.5.0.so "$lib/libggml.so"
fi
echo "$lib"
