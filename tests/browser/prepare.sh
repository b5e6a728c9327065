# Sourced by the browser tests: prepares BROWSER_RUN, a copy of tests/browser in the build
# tree with its node_modules (npm ci there, npm's cache there too), so that the tests write
# nothing into the source tree nor into the user's home. `npm ci` runs again only when
# package-lock.json changed.
browser_prepare() {
    local src=$1 build=${PLI_BIN_DIR:-$PLI_SOURCE_DIR/build}
    BROWSER_RUN=$build/browser-run
    mkdir -p "$BROWSER_RUN"
    cp "$src"/*.mjs "$src"/package.json "$BROWSER_RUN"/
    if [ ! -d "$BROWSER_RUN/node_modules/playwright-core" ] || [ ! -d "$BROWSER_RUN/node_modules/axe-core" ] \
        || ! cmp -s "$src/package-lock.json" "$BROWSER_RUN/package-lock.json"; then
        cp "$src/package-lock.json" "$BROWSER_RUN"/
        (cd "$BROWSER_RUN" && npm_config_cache="$BROWSER_RUN/.npm-cache" npm ci --no-audit --no-fund) >&2 \
            || fail "npm ci failed in $BROWSER_RUN"
    fi
}
