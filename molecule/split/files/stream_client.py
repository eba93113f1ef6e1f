"""Test-only streaming client (molecule/split): follows Mastodon's public timeline through the front door as an event
stream, and reconnects whenever it ends, as Mastodon's web client does. One line per event: "time connected|closed|
error|data ...". Stops when a stop file appears or after an hour."""
import http.client
import os
import sys
import time

host, port, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
deadline = time.monotonic() + 3600
with open(out, "a", buffering=1, encoding="utf-8") as log:
    while time.monotonic() < deadline and not os.path.exists(stop):
        try:
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request("GET", "/api/v1/streaming/public",
                         headers={"Host": "mastodon.example", "Accept": "text/event-stream"})
            response = conn.getresponse()
            log.write("%.3f connected %d %s\n" % (time.time(), response.status, response.getheader("X-Fixture-Host", "-")))
            while not os.path.exists(stop):
                line = response.fp.readline()
                if not line:
                    break
                text = line.decode("utf-8", "replace").rstrip("\n")
                if text.startswith("data: "):
                    log.write("%.3f data %s\n" % (time.time(), text[6:]))
            log.write("%.3f closed\n" % time.time())
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            log.write("%.3f error %s\n" % (time.time(), type(exc).__name__))
        time.sleep(0.2)
