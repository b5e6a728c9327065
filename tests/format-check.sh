#!/usr/bin/env bash
# Fails when a C++ file of the tree is not formatted as .clang-format says.
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
files=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find core milter linkd admin-cli tests -name '*.[ch]pp')
clang-format --dry-run -Werror $files
echo "format: $(echo "$files" | wc -w) files ok"
