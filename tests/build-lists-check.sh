#!/usr/bin/env bash
# Fails when a source file of the tree is not named in the CMakeLists.txt that builds it (the
# lists are explicit: a file left out would not be compiled, or a test not run), or when a
# CMake file uses file(GLOB).
set -eu
cd "$(dirname "$0")/.."
command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
status=0
# listed FILE CMAKELISTS: FILE (relative to the CMakeLists.txt's folder) is a word of it.
listed() {
    local rel=${1#"$(dirname "$2")/"}
    grep -qE "(^|[[:space:]/(])${rel//./\\.}([[:space:])]|\$)" "$2" ||
        { echo "not in $2: $rel"; status=1; }
}
for f in $(git ls-files 'core/*/*.cpp' 'core/templates/*.html' 'core/templates/*.txt' 'core/templates/*.css'); do
    listed "$f" core/CMakeLists.txt
done
for d in admin-cli milter linkd bench tools; do
    for f in $(git ls-files "$d/*.cpp"); do listed "$f" "$d/CMakeLists.txt"; done
done
for f in $(git ls-files 'tests/unit/*.cpp' 'tests/integration/*.sh'); do listed "$f" tests/CMakeLists.txt; done
for f in $(git ls-files 'tests/fuzz/*.cpp'); do
    name=$(basename "$f" .cpp)
    grep -qE "pli_fuzz_target\\($name " tests/fuzz/CMakeLists.txt || { echo "not a target of tests/fuzz/CMakeLists.txt: $name"; status=1; }
done
if git grep -nE '^[^#]*file\(GLOB' -- 'CMakeLists.txt' '*/CMakeLists.txt' 'cmake/*.cmake'; then
    echo "file(GLOB) above: list the files"
    status=1
fi
[ $status -eq 0 ] && echo "build lists: every source file is listed"
exit $status
