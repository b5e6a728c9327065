#!/usr/bin/env python3
"""bench-table.py RESULTS.tsv: the Markdown table of bench/bench.sh from its raw results
(one "key<TAB>value" a line). MTA ratios are taken per repetition against the baseline of
the same repetition, then the median; msg/s are medians too."""
import statistics
import sys

r = {}
for line in open(sys.argv[1], encoding="utf-8"):
    k, _, v = line.rstrip("\n").partition("\t")
    r[k] = v


def reps(key):
    out, i = [], 1
    while f"{key}.{i}" in r:
        out.append(float(r[f"{key}.{i}"]))
        i += 1
    return out


def ratio(size, row):
    return statistics.median(a / b for a, b in zip(reps(f"mta.{size}.{row}"), reps(f"mta.{size}.none")))


def ok(cond):
    return "yes" if cond else "**no**"


rows = []
for size in (4, 100) if reps("mta.4.none") else ():
    base = statistics.median(reps(f"mta.{size}.none"))
    dkim = ratio(size, "dkim")
    rows.append((f"MTA {size} KB, no milter (baseline)", f"{base:.0f} msg/s", "", "1.00", "", ""))
    for row, label, target, good in (
        ("pass", "pli-milter, not registered (pass-through)", "≥ 0.90 and > OpenDKIM",
         lambda x: x >= 0.90 and x > dkim),
        ("ar1", "registered AR, 1 recipient", "≥ 0.40 (0.5 is the ceiling)", lambda x: x >= 0.40),
        ("ar5", "registered AR, 5 recipients", "", None),
        ("simple", "registered simple mode, 1 recipient", "", None),
        ("dkim", "OpenDKIM signing (2048-bit RSA) instead", "", None),
    ):
        x = ratio(size, row)
        v = statistics.median(reps(f"mta.{size}.{row}"))
        rows.append((f"MTA {size} KB, {label}", f"{v:.0f} msg/s", f"{base:.0f} msg/s",
                     f"{x:.2f}", target, ok(good(x)) if good else ""))

lp = {k: [float(x) for x in r[f"lat.{k}"].split()] for k in ("none", "none_buyer", "pass", "ar1")
      if f"lat.{k}" in r}
for k, label, base in (("pass", "pass-through", "none"), ("ar1", "registered AR, 1 recipient", "none_buyer")
                       ) if lp else ():
    rows.append((f"SMTP latency per message with the milter, {label}, p50 / p99 (added)",
                 f"{lp[k][0]:.2f} / {lp[k][1]:.2f} ms ({lp[k][0] - lp[base][0]:+.2f} / "
                 f"{lp[k][1] - lp[base][1]:+.2f} ms)",
                 f"no milter: {lp[base][0]:.2f} / {lp[base][1]:.2f} ms", "", "", ""))

linkd = "get.linkd.10" in r
for c in (10, 100) if linkd else ():
    n_rps, n_p99, n_bad = r[f"get.nginx.{c}"].split()
    l_rps, l_p99, l_bad = r[f"get.linkd.{c}"].split()
    x = float(l_rps) / float(n_rps)
    rows.append((f"pli-linkd landing page ({r['page.bytes']} B), wrk {c} connections",
                 f"{float(l_rps):,.0f} req/s", f"nginx static: {float(n_rps):,.0f} req/s",
                 f"{x:.2f}", "≥ 0.8", ok(x >= 0.8 and l_bad == "0")))
    rows.append((f"pli-linkd landing page p99, wrk {c} connections", f"{float(l_p99):.2f} ms",
                 f"nginx: {float(n_p99):.2f} ms", "", "< 5 ms", ok(float(l_p99) < 5)))
for c in (10, 100) if linkd else ():
    rps, p99, bad = r[f"post.linkd.{c}"].split()
    rows.append((f"pli-linkd read POSTs (event fdatasync'd), wrk {c} connections, "
                 f"{r['tokens']} links", f"{float(rps):,.0f} req/s (p99 {float(p99):.1f} ms)"
                 + (f", **{int(bad):,} errors**" if bad != "0" else ""), "",
                 "", "≥ 3,000/s", ok(float(rps) >= 3000 and bad == "0")))

for size in (4, 100) if reps("mta.4.none_pg") else ():
    base = statistics.median(reps(f"mta.{size}.none_pg"))
    x = statistics.median(a / b for a, b in zip(reps(f"mta.{size}.ar1_pg"), reps(f"mta.{size}.none_pg")))
    v = statistics.median(reps(f"mta.{size}.ar1_pg"))
    rows.append((f"MTA {size} KB, registered AR, 1 recipient, **PostgreSQL store**", f"{v:.0f} msg/s",
                 f"{base:.0f} msg/s (no milter, just before)", f"{x:.2f}", "≥ 0.35", ok(x >= 0.35)))
for c in (10, 100) if "post.pg.10" in r else ():
    rps, p99, bad = r[f"post.pg.{c}"].split()
    rows.append((f"pli-linkd read POSTs on the **PostgreSQL store**, wrk {c} connections, "
                 f"{r['tokens_pg']} links", f"{float(rps):,.0f} req/s (p99 {float(p99):.1f} ms)"
                 + (f", **{int(bad):,} errors**" if bad != "0" else ""), "",
                 "", "≥ 3,000/s" if c == 100 else "", ok(float(rps) >= 3000 and bad == "0") if c == 100 else ""))

if "rss.milter" in r:
    mil = int(r["rss.milter"]) / 1024
    anon = f" (anonymous: {int(r['rss.milter.anon']) / 1024:.1f} MB)" if r.get("rss.milter.anon") else ""
    rows.append(("Peak RSS of pli-milter, 50 concurrent sessions (registered, 100 KB)",
                 f"{mil:.1f} MB{anon}", "", "", "< 64 MB", ok(mil < 64)))
if linkd:
    rows.append(("Peak RSS of pli-linkd, after the wrk runs", f"{int(r['rss.linkd']) / 1024:.1f} MB",
                 "", "", "", ""))

print(f"pli benchmark, {r['date']}; {r['machine']}; {r['mode']}.\n")
if r.get("tempfails", "0") != "0":
    print(f"pli-milter answered 451 {r['tempfails']} times during the run (see its log).\n")
print("| figure | measured | baseline (same run) | ratio | target | met |")
print("|---|---|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
