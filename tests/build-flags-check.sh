#!/usr/bin/env bash
# build-flags-check.sh BUILD_DIR: every file of the project is compiled with the warnings of
# pli_warnings (cmake/warnings.cmake), with -Werror exactly when the build has PLI_WERROR=ON;
# and `make` turns PLI_WERROR on under CI (CI=true, as .ci/run sets it) and only then.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: build-flags-check.sh BUILD_DIR}" && pwd)
[ -f "$build/compile_commands.json" ] || { echo "SKIP: no $build/compile_commands.json"; exit 77; }
status=0
ci=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -n -C "$src" build CI=true BUILD="$build")
grep -q -- '-DPLI_WERROR=ON' <<<"$ci" || { echo "FAIL: make build CI=true does not set PLI_WERROR=ON"; status=1; }
local_build=$(env -u CI -u WERROR -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -n -C "$src" build BUILD="$build")
if grep -q -- '-DPLI_WERROR' <<<"$local_build"; then
    echo "FAIL: make build outside CI sets PLI_WERROR"; status=1
fi
werror=0
grep -qE '^PLI_WERROR:BOOL=(ON|TRUE|1)$' "$build/CMakeCache.txt" && werror=1
python3 - "$src" "$build/compile_commands.json" "$werror" <<'PY' || status=1
import json, os, sys
src, db, werror = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
bad, n = [], 0
for e in json.load(open(db)):
    f = os.path.relpath(e["file"], src)
    n += 1
    args = e.get("command", " ".join(e.get("arguments", []))).split()
    missing = [w for w in ("-Wall", "-Wextra", "-Wpedantic") if w not in args]
    if werror != ("-Werror" in args):
        missing.append("-Werror" if werror else "no -Werror")
    if missing:
        bad.append(f"{f}: {' '.join(missing)}")
for b in bad:
    print("FAIL:", b)
print(f"build flags: {n - len(bad)} of {n} files with the project's warnings (PLI_WERROR {'ON' if werror else 'OFF'})")
sys.exit(1 if bad or n == 0 else 0)
PY
exit $status
