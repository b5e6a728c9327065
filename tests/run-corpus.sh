#!/usr/bin/env bash
# Runs the [corpus] unit tests, or skips (exit 77) when the corpus (PLI_CORPUS_DIR) is absent.
set -eu
if [ ! -d "${PLI_CORPUS_DIR:-}/dsn" ] || [ ! -d "${PLI_CORPUS_DIR:-}/mime" ]; then
  echo "SKIP: the shared corpus is not at '${PLI_CORPUS_DIR:-}'"
  exit 77
fi
exec "$1" "[corpus]"
