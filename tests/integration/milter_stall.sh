#!/usr/bin/env bash
# Guards against the ~40 ms per-message stalls of a milter over TCP: a milter that writes
# several small replies (header changes, recipient removals) before its final one waits for
# Postfix's delayed ACK under Nagle's algorithm. pli-milter sets TCP_NODELAY on its inet:
# listener, and Linux gives accepted sockets the listener's option. Checked structurally,
# never by timing (a timed bound fails on a loaded machine): the socket option is read from
# pli-milter's own sockets (tests/harness/tcp-nodelay.py, pidfd_getfd), on the listener and on
# the connections Postfix's smtpd holds open during a session; then registered and
# pass-through mail go through that TCP milter.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PLI_MILTER_INET=1
pli_setup
NODELAY="$PLI_SOURCE_DIR/tests/harness/tcp-nodelay.py"
[ "$(id -u)" = 0 ] || skip "reading another process's socket options needs root (pidfd_getfd)"

out=$(python3 "$NODELAY" "$PLI_MILTER_PID" --listening) || fail "pli-milter's inet: listener lacks TCP_NODELAY: $out"
echo "ok 1 - pli-milter's inet: listener has TCP_NODELAY ($out)"

# An SMTP session held open: its smtpd is connected to the milter for the whole session.
python3 - "$PFX_PORT_IN" "$NODELAY" "$PLI_MILTER_PID" <<'PY' || fail "a connection from smtpd to pli-milter lacks TCP_NODELAY"
import smtplib, subprocess, sys, time
port, tool, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("stall.example")
s.mail("alice@buyer.example")
for _ in range(200):  # until smtpd's milter connection is accepted (bounded, not timed)
    r = subprocess.run([sys.executable, tool, pid, "--established"], capture_output=True, text=True)
    if r.returncode != 2:
        break
    time.sleep(0.05)
print(r.stdout, end="")
s.rset()
s.quit()
sys.exit(r.returncode)
PY
echo "ok 2 - the connection accepted from smtpd has TCP_NODELAY"

smtp-source -s 1 -m 3 -f someone@elsewhere.example -t x@remote.example "127.0.0.1:$PFX_PORT_IN" >/dev/null \
    || fail "pass-through mail refused over the TCP milter"
smtp-source -s 1 -m 3 -f alice@buyer.example -t tcp@remote.example "127.0.0.1:$PFX_PORT_IN" >/dev/null \
    || fail "registered mail refused over the TCP milter"
n=$($PLI list --rcpt "tcp@remote.example" --json | pli_json 'j["total"]')
[ "$n" = 3 ] || fail "registered deliveries over the TCP milter: $n, not 3"
echo "ok 3 - registered and pass-through mail through the milter on TCP"
