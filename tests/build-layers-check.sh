#!/usr/bin/env bash
# Fails when a file of a core component includes a header of another component that the
# component does not link (core/CMakeLists.txt): the dependency graph of the components is the
# one CMake knows, and a new include across components must be declared there first.
set -eu
cd "$(dirname "$0")/.."
python3 - <<'PY'
import os, re, sys
cm = re.sub(r"#.*", "", open("core/CMakeLists.txt").read())
owner, deps = {}, {}
for name, body in re.findall(r"pli_add_component\((\w+)\s+([^)]*)\)", cm):
    deps[name] = set()
    for f in body.split():
        # a header-only file is named in its component's list too
        if f.endswith((".cpp", ".hpp")) and not f.startswith("$"):
            owner["core/" + f] = name
        if "PLI_TEMPLATES_CPP" in f:
            owner["core/templates/templates.hpp"] = name
        if "PLI_PROTO_SRCS" in f:
            owner["core/store/records.pb.h"] = name
for name, body in re.findall(r"target_link_libraries\((pli_\w+)\s+([^)]*)\)", cm):
    if name in deps:
        deps[name] |= {w for w in body.split() if w in deps}
# A header belongs to the component of its .cpp, or else to the only component of its folder.
folder = {}
for f, c in owner.items():
    folder.setdefault(os.path.dirname(f), set()).add(c)
def component(path):
    if path in owner:
        return owner[path]
    cpp = re.sub(r"\.hpp$", ".cpp", path)
    if cpp in owner:
        return owner[cpp]
    cs = folder.get(os.path.dirname(path), set())
    return next(iter(cs)) if len(cs) == 1 else None
bad = []
files = [os.path.join(d, f) for d, _, fs in os.walk("core") for f in fs if f.endswith((".cpp", ".hpp"))]
for f in sorted(files):
    c = component(f)
    if c is None:
        bad.append(f"{f}: belongs to no component (name its .cpp in core/CMakeLists.txt)")
        continue
    for inc in re.findall(r'^#include "(core/[^"]+)"', open(f).read(), re.M):
        d = component(inc)
        if d is None:
            bad.append(f"{f}: includes {inc}, of no component")
        elif d != c and d not in deps[c]:
            bad.append(f"{f} ({c}) includes {inc} ({d}): add {d} to {c}'s target_link_libraries")
for b in bad:
    print("FAIL:", b)
print(f"build layers: {len(files)} files of {len(deps)} components checked, {len(bad)} undeclared include(s)")
sys.exit(1 if bad else 0)
PY
