#!/usr/bin/env bash
# The Debian package: it builds (cpack), installs with dpkg -i (user, directories, keys,
# systemd units that systemd-analyze accepts); a private Postfix set up only from conf/'s
# snippets (ports and paths adapted) runs with the installed binaries; `pli doctor` passes
# there and names the exact fix when one line is removed; a registered mail goes end to end.
#
# All of it runs in a throw-away root, never on the host: the script runs itself again in a
# private mount namespace whose / is an overlay of the host's / with its writable layer on a
# tmpfs (`unshare --mount`, overlayfs, chroot). dpkg's database, the pli user, /etc/pli,
# /var/lib/pli, the installed files and the build tree's cpack output land in that tmpfs and
# vanish with the namespace, even when the test is killed. The network and the harness's port
# reservations are the host's, so the private Postfix and the daemons are reached as usual.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pfx_require
command -v cpack >/dev/null || skip "cpack is not installed"
if [ -z "${PLI_THROWAWAY_ROOT:-}" ]; then
    [ "$(id -u)" = 0 ] || skip "the package test needs root (dpkg -i in a throw-away root)"
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
    grep -qw overlay /proc/filesystems || skip "the kernel has no overlayfs: no throw-away root"
    mkdir -p "${PFX_RESERVE_DIR:-/tmp/pfx-harness-ports}"
    host_state() { getent passwd pli || true; getent group pli || true; ls -d /etc/pli /var/lib/pli /var/spool/postfix/pli 2>/dev/null || true; }
    before=$(host_state)
    TR=$(mktemp -d "${TMPDIR:-/tmp}/pli-throwaway.XXXXXX")
    rc=0
    unshare --mount --propagation private --fork -- bash -c '
        set -e
        tr=$1 script=$2 reserve=$3
        mount -t tmpfs -o mode=0755 pli-throwaway "$tr"
        mkdir "$tr/upper" "$tr/work" "$tr/root"
        mount -t overlay pli-throwaway -o "lowerdir=/,upperdir=$tr/upper,workdir=$tr/work" "$tr/root"
        for d in proc sys dev; do mount --rbind "/$d" "$tr/root/$d"; done
        mount --bind "$reserve" "$tr/root$reserve"
        exec chroot "$tr/root" env PLI_THROWAWAY_ROOT=1 bash "$script"
    ' throwaway "$TR" "$(readlink -f "$0")" "${PFX_RESERVE_DIR:-/tmp/pfx-harness-ports}" || rc=$?
    rmdir "$TR" 2>/dev/null || true
    [ "$(host_state)" = "$before" ] \
        || fail "the throw-away root leaked onto the host: $(host_state | tr '\n' ' ')"
    exit $rc
fi
if dpkg-query -W -f='${Status}' pli 2>/dev/null | qgrep "install ok installed"; then
    skip "a pli package is already installed on this machine: not touching it"
fi

# 1. Build and install the package.
(cd "$PLI_BIN_DIR" && cpack -G DEB >/dev/null) || fail "cpack failed"
deb=$(ls -t "$PLI_BIN_DIR"/pli_*_amd64.deb | head -n 1)
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed"
for f in /usr/sbin/pli-milter /usr/sbin/pli-linkd /usr/bin/pli /etc/pli/pli.yaml \
         /lib/systemd/system/pli-milter.service /lib/systemd/system/pli-linkd.service; do
    [ -e "$f" ] || fail "$f is not installed"
done
getent passwd pli >/dev/null || fail "no pli user"
[ "$(stat -c %U:%a /var/lib/pli)" = "pli:750" ] || fail "/var/lib/pli: $(stat -c %U:%a /var/lib/pli)"
[ "$(stat -c %U:%G:%a /etc/pli/keys/receipt.key)" = "root:pli:640" ] || fail "the signing key is not root:pli 0640"
[ "$(stat -c %U:%G:%a /etc/pli/keys)" = "root:pli:750" ] || fail "the key directory is not root:pli 0750"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/pli-milter.service /lib/systemd/system/pli-linkd.service \
        || fail "systemd-analyze verify failed"
fi
echo "ok 1 - $(basename "$deb") installs: binaries, config, pli user, /var/lib/pli, 0600 key, valid units"

# 2. A private Postfix with none of pli's lines, then conf/'s snippets, adapted.
pfx_setup --no-pli
W=$(mktemp -d "${TMPDIR:-/tmp}/pli-pkg.XXXXXX"); chmod 755 "$W"; pfx_on_exit "rm -rf $W"
SUBMIT=$(pfx_free_port)
LINKD=$(pfx_free_port)
SOCKDIR=$PFX_DIR/queue/pli
install -d -o pli -g postfix -m 750 "$SOCKDIR"
adapt() { # the snippets, with this instance's domain, ports and chroot
    sed -e "s/example\.org/buyer.example/g" \
        -e "s/^submission inet n       -       y /127.0.0.1:$SUBMIT inet n - n /" \
        -e "s/^127\.0\.0\.1:10025 inet n  -       y /127.0.0.1:$PFX_PORT_REINJECT inet n - n /" \
        -e "s/^pli-smtp  unix  -       -       y /pli-smtp  unix  -       -       n /" \
        -e "/smtpd_tls_security_level=encrypt/d" -e "/smtpd_sasl_auth_enable/d" \
        -e "/smtpd_client_restrictions=permit_sasl_authenticated/d" \
        -e "s|/etc/postfix/sender_logins|$W/sender_logins|" "$1"
}
# The snippet's sender login map: alice's login owns alice's address.
echo "alice@buyer.example alice@buyer.example" >"$W/sender_logins"
postmap -c "$PFX_CONF_DIR" "$W/sender_logins"
adapt "$PLI_SOURCE_DIR/conf/main.cf.snippet" | grep -v '^#' >>"$PFX_CONF_DIR/main.cf"
adapt "$PLI_SOURCE_DIR/conf/master.cf.snippet" | grep -v '^#' >>"$PFX_CONF_DIR/master.cf"
postfix -c "$PFX_CONF_DIR" check || fail "postfix check failed with the snippets"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1
# pli.yaml: the installed one, with this instance's paths, ports and domain.
sed -e "s|path: /var/lib/pli|path: $W/store|" \
    -e "s|unix:/var/spool/postfix/pli/milter.sock|unix:$SOCKDIR/milter.sock|" \
    -e "s|\"\\*@marches.example.org\"|\"*@buyer.example\"|" \
    -e "s|internal_domains: \\[\"example.org\"\\]|internal_domains: [\"buyer.example\"]|" \
    -e "s|trusted_networks: \\[\\]|trusted_networks: [\"127.0.0.0/8\"]|" \
    -e "s|port: 10025|port: $PFX_PORT_REINJECT|" \
    -e "s|pli-bounce@example.org|pli-bounce@buyer.example|" \
    -e "s|listen: \"127.0.0.1:8080\"|listen: \"127.0.0.1:$LINKD\"|" \
    -e "s|https://pli.example.org|http://127.0.0.1:$LINKD|" /etc/pli/pli.yaml >"$W/pli.yaml"
install -d -o pli -g pli -m 750 "$W/store"
chown pli "$W/pli.yaml"
/usr/bin/pli --config "$W/pli.yaml" check-config >/dev/null || fail "the adapted pli.yaml is invalid"
for _ in $(seq 1 100); do all_up=1; ss -ltnH "sport = :$SUBMIT" | qgrep . || all_up=0; [ $all_up = 1 ] && break; sleep 0.1; done
runuser -u pli -g pli -G postfix -- /usr/sbin/pli-milter --config "$W/pli.yaml" --foreground >"$W/milter.log" 2>&1 &
mpid=$!; pfx_on_exit "kill $mpid 2>/dev/null || true"
runuser -u pli -g pli -- /usr/sbin/pli-linkd --config "$W/pli.yaml" --foreground >"$W/linkd.log" 2>&1 &
lpid=$!; pfx_on_exit "kill $lpid 2>/dev/null || true"
_pfx_wait 20 "the installed pli-milter" "" test -S "$SOCKDIR/milter.sock"
_pfx_wait 20 "the installed pli-linkd" "" curl -fs -o /dev/null "http://127.0.0.1:$LINKD/healthz"
echo "ok 2 - Postfix from conf/'s snippets, the installed daemons running as pli"

# 3. pli doctor passes, then names the fix when one line goes.
/usr/bin/pli --config "$W/pli.yaml" doctor --postfix-config "$PFX_CONF_DIR" >"$W/doctor.out" 2>&1 \
    || { cat "$W/doctor.out" >&2; fail "pli doctor failed on a correct setup"; }
postconf -c "$PFX_CONF_DIR" -X internal_mail_filter_classes
if /usr/bin/pli --config "$W/pli.yaml" doctor --postfix-config "$PFX_CONF_DIR" >"$W/doctor.out" 2>&1; then
    fail "pli doctor passed without internal_mail_filter_classes"
fi
grep -q "^FAIL" "$W/doctor.out" || fail "no FAIL line"
grep -qx "        internal_mail_filter_classes = bounce" "$W/doctor.out" || { cat "$W/doctor.out" >&2; fail "the fix line is missing"; }
[ "$(grep -c '^FAIL' "$W/doctor.out")" = 1 ] || fail "more than the one problem reported"
postconf -c "$PFX_CONF_DIR" -e "internal_mail_filter_classes = bounce"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1
echo "ok 3 - pli doctor: all well, then exactly 'internal_mail_filter_classes = bounce' when it is removed"

# 4. A registered mail end to end through that setup.
swaks --server 127.0.0.1 --port "$SUBMIT" --from alice@buyer.example --to pkg@remote.example \
    --header "Subject: [TYPE:notification] Notification du marché" \
    --header "Message-ID: <pkg-1@buyer.example>" --body "Le marché vous est attribué." >/dev/null \
    || fail "the submission was refused"
pfx_wait_sink_count 1 30
link=$(pli_mail_part "$(pfx_sink_files | head -n 1)" text/plain | grep -oE "http://127.0.0.1:$LINKD/m/[A-Za-z0-9_-]+" | head -n 1)
[ -n "$link" ] || fail "no link in the notice"
for _ in $(seq 1 100); do
    s=$(/usr/bin/pli --config "$W/pli.yaml" show pkg-1@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')
    [ "$s" = delivered ] && break; sleep 0.2
done
[ "$s" = delivered ] || fail "not delivered: $s"
curl -fsS -X POST -d open=1 "$link" | qgrep "Le marché vous est attribué" || fail "content page"
s=$(/usr/bin/pli --config "$W/pli.yaml" show pkg-1@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')
[ "$s" = read ] || fail "not read: $s"
echo "ok 4 - a registered mail end to end with the installed package: sent, delivered, read"
