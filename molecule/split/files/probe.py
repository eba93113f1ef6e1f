"""Test-only probe (molecule/split): GET a URL of the front door at a steady rate, one line per request
("time status served-by seconds [version]": the release a JSON answer names), until a stop file appears or an hour has passed."""
import http.client
import json
import os
import sys
import time

host, port, path, rate, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6]
interval = 1.0 / rate
deadline = time.monotonic() + 3600
with open(out, "a", buffering=1, encoding="utf-8") as log:
    due = time.monotonic()
    while time.monotonic() < deadline and not os.path.exists(stop):
        start = time.time()
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", path, headers={"Host": "mastodon.example"})
            response = conn.getresponse()
            body = response.read()
            status, served = response.status, response.getheader("X-Fixture-Host", "-")
            try:
                version = str(json.loads(body).get("version", "-"))
            except (ValueError, AttributeError):
                version = "-"
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            status, served, version = 0, type(exc).__name__, "-"
        log.write("%.3f %d %s %.3f %s\n" % (start, status, served, time.time() - start, version))
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))
