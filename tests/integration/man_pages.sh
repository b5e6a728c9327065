#!/usr/bin/env bash
# The man pages of doc/man/ (pli(1), pli-milter(8), pli-linkd(8), pli.yaml(5)):
#   1. each renders with no warning (man --warnings -Tutf8, and groff -ww: every category);
#   2. pli(1) has a section for every subcommand `pli --help` lists (and the groups' ones)
#      and names every option each of them, and pli itself, accepts;
#   3. pli-milter(8) and pli-linkd(8) name every option of their program's --help;
#   4. pli.yaml(5) describes every key of the table in core/config/config.cpp, and no key
#      that the code does not know;
#   5. an install of the build tree puts them, gzipped, in share/man/manN.
# Exit 0 pass, 1 fail, 77 skip (man missing).
set -euo pipefail
src=${PLI_SOURCE_DIR:?}
bin=${PLI_BIN_DIR:?}
man_dir=$src/doc/man
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
command -v man >/dev/null || { echo "SKIP: man is not installed (man-db)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The page's text as written, with roff's escaped hyphens as plain ones.
page_text() {
    sed -e 's/\\-/-/g' -e 's/\\(dq/"/g' "$man_dir/$1"
}

# 1. No warnings.
for page in pli.1 pli-milter.8 pli-linkd.8 pli.yaml.5; do
    [ -f "$man_dir/$page" ] || fail "$page is missing"
    # man's default warnings (macros), then groff with every warning category (-ww).
    warnings=$(man --warnings -l -Tutf8 "$man_dir/$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "$page: $warnings"
    if command -v groff >/dev/null; then
        warnings=$(groff -man -ww -z -Tutf8 "$man_dir/$page" 2>&1)
        [ -z "$warnings" ] || fail "$page: $warnings"
    fi
    # Each page has the sections a reader looks for.
    for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        grep -q "^\.SH \"\?$section\"\?$" "$man_dir/$page" || fail "$page has no $section section"
    done
done
echo "ok 1 - the four pages render without warnings"

# Options of a CLI11 --help text: every -x or --word at the start of an option line.
options_of() {
    "$@" --help | sed -n '/^Options:/,/^[A-Z][a-z]*:/p' | grep -oE '^ +(-[a-zA-Z],)?--?[a-z][a-z-]*' |
        tr ',' '\n' | sed 's/^ *//' | grep .
}
# Subcommands of a CLI11 --help text.
subcommands_of() {
    "$@" --help | sed -n '/^Subcommands:/,$p' | sed 1d | grep -oE '^ +[a-z][a-z-]*' | sed 's/^ *//'
}

# 2. pli(1).
pli=$bin/admin-cli/pli
[ -x "$pli" ] || fail "no $pli (build first)"
page_text pli.1 >"$tmp/pli.1"
commands=()
for sub in $(subcommands_of "$pli"); do
    groups=$(subcommands_of "$pli" "$sub" || true)
    if [ -n "$groups" ]; then
        for leaf in $groups; do commands+=("$sub $leaf"); done
    else
        commands+=("$sub")
    fi
done
[ ${#commands[@]} -ge 12 ] || fail "only ${#commands[@]} subcommands found in pli --help: ${commands[*]}"
for c in "${commands[@]}"; do
    grep -q "^\.SS \"pli $c\( \|\"\)" "$tmp/pli.1" || fail "pli.1 has no section for 'pli $c'"
    # The options must be named in that command's sections (up to the next command's).
    awk -v c="pli $c" '/^\.SS "/ { on = index($0, "\"" c " ") == 5 || index($0, "\"" c "\"") == 5 }
                       /^\.SH / { on = 0 } on' "$tmp/pli.1" >"$tmp/section"
    # shellcheck disable=SC2086
    for opt in $(options_of "$pli" $c); do
        case $opt in -h | --help) continue ;; esac
        grep -qe "$opt\b" "$tmp/section" || fail "pli.1: 'pli $c' does not document $opt"
    done
done
for opt in $(options_of "$pli"); do
    grep -qe "$opt\b" "$tmp/pli.1" || fail "pli.1 does not document the global option $opt"
done
# Every exit status the CLI defines (admin-cli/cli.hpp) is in EXIT STATUS.
awk '/^\.SH EXIT STATUS/ { on = 1; next } /^\.SH / { on = 0 } on' "$tmp/pli.1" >"$tmp/exit"
# The CLI's statuses: numbers, <sysexits.h> names or another module's constant, resolved.
statuses=$(python3 - "$src" <<'PY'
import re, sys
src = sys.argv[1]
defs = dict(re.findall(r"#define\s+(EX_\w+)\s+(\d+)", open("/usr/include/sysexits.h").read()))
for f, prefix in (("core/config/config.hpp", "config::"), ("admin-cli/cli.hpp", "")):
    for name, value in re.findall(r"constexpr int (k_exit_\w+) = ([\w:]+);", open(f"{src}/{f}").read()):
        defs[prefix + name] = value
def resolve(v, depth=0):
    return v if v.isdigit() or depth > 5 else resolve(defs.get(v, "?"), depth + 1)
names = re.findall(r"constexpr int (k_exit_\w+) =", open(f"{src}/admin-cli/cli.hpp").read())
print(" ".join(resolve(n) for n in names))
PY
)
[ "$(echo $statuses | wc -w)" -ge 6 ] || fail "fewer than 6 exit statuses found in admin-cli/cli.hpp: $statuses"
for status in $statuses; do
    grep -qx "\.B $status" "$tmp/exit" || fail "pli.1: exit status $status is not documented"
done
echo "ok 2 - pli.1 documents ${#commands[@]} subcommands, their options and the exit statuses"

# 3. The daemons.
for prog in milter/pli-milter linkd/pli-linkd; do
    name=$(basename "$prog")
    [ -x "$bin/$prog" ] || fail "no $bin/$prog (build first)"
    page_text "$name.8" >"$tmp/$name.8"
    for opt in $(options_of "$bin/$prog"); do
        grep -qe "$opt\b" "$tmp/$name.8" || fail "$name.8 does not document $opt"
    done
    for section in OPTIONS SIGNALS "EXIT STATUS" LOGGING FILES; do
        grep -q "^\.SH \"\?$section\"\?$" "$tmp/$name.8" || fail "$name.8 has no $section section"
    done
done
# Every decision of the milter's table (core/milter/outcome.hpp) is listed in LOGGING.
outcomes=$(sed -n '/^enum class Outcome/,/^};/p' "$src/core/milter/outcome.hpp" |
    grep -oE '^  [a-z_]+' | tr -d ' ' | grep -vx 'count_')
[ "$(echo $outcomes | wc -w)" -ge 15 ] || fail "fewer than 15 outcomes found in outcome.hpp"
for o in $outcomes; do
    grep -qE "^\.BR? $o( ,| \.)?$" "$tmp/pli-milter.8" || fail "pli-milter.8 does not list the decision $o"
done
echo "ok 3 - pli-milter.8 and pli-linkd.8 document their options and every decision"

# 4. pli.yaml(5) against the key table.
perl -0ne 'while (/\b\w+_key\(\s*"([a-z_]+\.[a-z_.]+)"/g) { print "$1\n" }' \
    "$src/core/config/config.cpp" | sort -u >"$tmp/keys.code"
[ "$(wc -l <"$tmp/keys.code")" -ge 40 ] || fail "fewer than 40 keys found in config.cpp"
# A key's entry is a tagged paragraph: .BR key " (type, default ...)".
page_text pli.yaml.5 | grep -oE '^\.BR [a-z_]+\.[a-z_.]+ " \(' | awk '{print $2}' |
    sort -u >"$tmp/keys.page"
missing=$(comm -23 "$tmp/keys.code" "$tmp/keys.page")
[ -z "$missing" ] || fail "pli.yaml.5 does not describe: $(echo $missing)"
unknown=$(comm -13 "$tmp/keys.code" "$tmp/keys.page")
[ -z "$unknown" ] || fail "pli.yaml.5 describes keys the code does not know: $(echo $unknown)"
# Every key is in the annotated conf/pli.yaml too, under its section.
for key in $(cat "$tmp/keys.code"); do
    section=${key%%.*}
    leaf=${key#*.}
    awk -v s="$section" -v l="$leaf" '/^[a-z_]+:/ { on = ($1 == s ":") }
        on && ($1 == l ":" || ($1 == "#" && $2 == l ":")) { found = 1 } END { exit !found }' "$src/conf/pli.yaml" ||
        fail "conf/pli.yaml does not list $key"
done
echo "ok 4 - pli.yaml.5 and conf/pli.yaml describe the $(wc -l <"$tmp/keys.code") keys of config.cpp"

# 5. Installed, gzipped, where man finds them.
DESTDIR=$tmp/root cmake --install "$bin" --prefix /usr >/dev/null || fail "cmake --install failed"
for page in pli.1 pli-milter.8 pli-linkd.8 pli.yaml.5; do
    gz=$tmp/root/usr/share/man/man${page##*.}/$page.gz
    [ -f "$gz" ] || fail "$page.gz is not installed in share/man/man${page##*.}"
    cmp -s <(gzip -dc "$gz") "$man_dir/$page" || fail "$gz is not doc/man/$page"
    # gzip -n: no name and no time stamp in the header (bytes 4-9: flags and mtime).
    [ "$(od -An -tx1 -j3 -N5 "$gz" | tr -d ' ')" = 0000000000 ] ||
        fail "$page.gz carries a name or a time stamp (gzip -n)"
done
MANPATH=$tmp/root/usr/share/man man -w pli.yaml >/dev/null || fail "man does not find pli.yaml(5)"
echo "ok 5 - an install puts the four pages, gzipped with -n, in share/man/manN"
