#!/usr/bin/python3
# export_events.py EXPORT EXPECTED: `pli export --format json` (EXPORT) holds EXPECTED
# deliveries, each with exactly one `sent` and one `delivered` event.
import json, sys
data = json.load(open(sys.argv[1]))
items = data["items"] if isinstance(data, dict) and "items" in data else data
sent = delivered = 0
for d in items:
    kinds = [e["kind"] for e in d.get("events", [])]
    assert kinds.count("sent") == 1, (d.get("id"), kinds)
    assert kinds.count("delivered") == 1, (d.get("id"), kinds)
    sent += 1; delivered += 1
assert sent == int(sys.argv[2]), (sent, sys.argv[2])
