#!/usr/bin/python3
# sink_notices.py LIST EXPECTED KILL BOUND: checks the notices at the sink (LIST: one file a
# line) of a load of smtp_load.py: EXPECTED recipients each got one, every copy of a notice
# has the same Message-ID, and copies exist only when KILL is "1" (a milter or a store cut
# off between the injection and the `sent` record: see load_no_loss.sh), at most BOUND.
import collections, email, sys
from email import policy
files, expected, kill, bound = open(sys.argv[1]).read().split(), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
ids = collections.defaultdict(set)
count = collections.Counter()
for f in files:
    raw = open(f, "rb").read()
    rcpt = [l.split()[1] for l in raw.decode("utf-8", "replace").splitlines() if l.startswith("X-Rcpt-Args:")]
    msg = email.message_from_bytes(raw, policy=policy.default)
    for r in rcpt:
        count[r] += 1
        ids[r].add(msg["Message-ID"])
assert len(count) == expected, "%d recipients got a notice, %d expected" % (len(count), expected)
copies = sum(count.values()) - expected
for r, s in ids.items():
    assert len(s) == 1, "%s got notices with different Message-IDs %s" % (r, s)
assert copies == 0 or (kill and copies <= bound), "%d copies (kill=%s, bound %d)" % (copies, kill, bound)
print("# %d notices for %d recipients, %d copies of a notice (same Message-ID)" % (sum(count.values()), expected, copies))
