"""mastodon_checkout: the checkout read as untrusted input, and a version that never goes backwards."""

from __future__ import annotations

import http.server
import json
import os
import threading

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import mastodon_checkout as module

VERSION_RB = "module Mastodon\n  module Version\n    def major\n      4\n    end\n    def minor\n      %d\n    end\n" \
             "    def patch\n      0\n    end\n  end\nend\n"


@pytest.fixture
def checkout(tmp_path):
    live = tmp_path / "live"
    (live / "lib" / "mastodon").mkdir(parents=True)
    (live / "config").mkdir()
    (live / "lib" / "mastodon" / "version.rb").write_text(VERSION_RB % 5)
    (live / ".env.production").write_text("LOCAL_DOMAIN=example.social\nDB_PASS=secret\nREDIS_NAMESPACE=\n")
    (live / ".env.production").chmod(0o644)
    (live / "config" / "database.yml").write_text("production:\n  adapter: postgresql\n")
    return live


@pytest.fixture
def run(run_module, tmp_path):
    state = str(tmp_path / "state" / "checkout.json")
    return lambda args: run_module(module, dict({"state_file": state}, **args))


def test_reads_version_env_keys_and_mode_but_never_a_value(checkout, run):
    code, result, out = run({"path": str(checkout), "database_yml": True})
    assert code == 0 and not result["changed"]
    assert result["version"] == "4.5.0" and result["problems"] == []
    assert result["env_keys"] == ["DB_PASS", "LOCAL_DOMAIN", "REDIS_NAMESPACE"]
    assert result["env_mode"] == "0644" and result["local_domain"] == "example.social"
    assert result["database_yml"].startswith("production:") and result["database_yml_exists"]
    assert "secret" not in out


def test_a_checkout_that_goes_backwards_is_refused(checkout, run):
    assert run({"path": str(checkout), "record": True})[1]["changed"]
    # The mastodon user writes 4.1.0 to force Makara mode.
    (checkout / "lib" / "mastodon" / "version.rb").write_text(VERSION_RB % 1)
    code, result, _out = run({"path": str(checkout), "record": True})
    assert code == 0 and not result["changed"]
    assert result["recorded_version"] == "4.5.0"
    assert result["problems"] and "version.rb says 4.1.0, but this host last ran Mastodon 4.5.0" in result["problems"][0]


def test_record_keeps_the_newest_and_check_mode_writes_nothing(checkout, run, tmp_path):
    state = tmp_path / "state" / "checkout.json"
    code, result, _out = run({"path": str(checkout), "record": True, "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and not state.exists()
    run({"path": str(checkout), "record": True})
    assert json.loads(state.read_text()) == {"version": "4.5.0"}
    assert (state.stat().st_mode & 0o777) == 0o600
    assert not run({"path": str(checkout), "record": True})[1]["changed"]
    (checkout / "lib" / "mastodon" / "version.rb").write_text(VERSION_RB % 6)
    assert run({"path": str(checkout), "record": True})[1]["changed"]
    assert json.loads(state.read_text()) == {"version": "4.6.0"}


@pytest.mark.parametrize("plant", ["version.rb", "database.yml", "live"])
def test_links_planted_in_the_checkout_are_refused(checkout, run, tmp_path, plant):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash:1::::::\n")
    for folder in (checkout, checkout / "config", checkout / "lib", checkout / "lib" / "mastodon"):
        os.chown(folder, 65534, 65534)
    path = checkout
    if plant == "version.rb":
        (checkout / "lib" / "mastodon" / "version.rb").unlink()
        (checkout / "lib" / "mastodon" / "version.rb").symlink_to(secret)
    elif plant == "database.yml":
        (checkout / "config" / "database.yml").unlink()
        (checkout / "config" / "database.yml").symlink_to(secret)
    else:
        home = tmp_path / "home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        (home / "live").symlink_to(checkout)
        path = home / "live"
    code, result, out = run({"path": str(path), "database_yml": True})
    assert code == 1 and "symbolic link" in result["msg"]
    assert "root:$6$hash" not in out


def test_a_fifo_as_the_env_file_is_refused_at_once(checkout, run):
    (checkout / ".env.production").unlink()
    os.mkfifo(checkout / ".env.production")
    code, result, _out = run({"path": str(checkout)})
    assert code == 1 and "not a regular file" in result["msg"]


class Instance(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Instance.seen.append((self.path, self.headers.get("Host"), self.headers.get("X-Forwarded-Proto")))
        body = json.dumps({"uri": "example.social", "version": "4.5.0+glitch"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_version_the_running_web_process_reports_counts(checkout, run):
    server = http.server.HTTPServer(("127.0.0.1", 0), Instance)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d" % server.server_address[1]
        (checkout / "lib" / "mastodon" / "version.rb").write_text(VERSION_RB % 1)
        code, result, _out = run({"path": str(checkout), "web_url": url})
    finally:
        server.shutdown()
    assert code == 0 and result["running_version"] == "4.5.0"
    assert "the running web process reports Mastodon 4.5.0" in result["problems"][0]
    # As nginx forwards it: the instance's own host name, over https.
    assert Instance.seen[-1] == ("/api/v1/instance", "example.social", "https")


def test_nothing_answering_is_no_running_version(checkout, run):
    code, result, _out = run({"path": str(checkout), "web_url": "http://127.0.0.1:9"})
    assert code == 0 and result["running_version"] == "" and result["problems"] == []


def test_a_pinned_version_is_taken_as_given(checkout, run):
    code, result, _out = run({"path": str(checkout), "version": "4.3.2"})
    assert code == 0 and result["version"] == "4.3.2" and result["problems"] == []


def test_an_upgrade_under_way_is_recorded_and_ended_by_the_version_it_aimed_at(checkout, run, tmp_path):
    state = tmp_path / "state" / "checkout.json"
    run({"path": str(checkout), "record": True})
    code, result, _out = run({"path": str(checkout), "upgrade_from": "4.5.0", "upgrade_to": "4.5.1"})
    assert code == 0 and result["changed"] and result["upgrade"] == {"from": "4.5.0", "to": "4.5.1"}
    assert json.loads(state.read_text()) == {"version": "4.5.0", "upgrade": {"from": "4.5.0", "to": "4.5.1"}}
    # The code is the new release, the processes not restarted yet: the record stays under way.
    (checkout / "lib" / "mastodon" / "version.rb").write_text(VERSION_RB.replace("      0\n", "      1\n") % 5)
    code, result, _out = run({"path": str(checkout)})
    assert result["version"] == "4.5.1" and result["upgrade"] == {"from": "4.5.0", "to": "4.5.1"} and not result["problems"]
    ready = {"path": str(checkout), "upgrade_from": "4.5.0", "upgrade_to": "4.5.1", "upgrade_code_ready": True}
    code, result, _out = run(ready)
    assert code == 0 and result["upgrade"] == {"from": "4.5.0", "to": "4.5.1", "code_ready": True}
    # Recording the upgrade again keeps what the steps reached.
    code, result, _out = run({"path": str(checkout), "upgrade_from": "4.5.0", "upgrade_to": "4.5.1"})
    assert not result["changed"] and result["upgrade"]["code_ready"]
    code, result, _out = run({"path": str(checkout), "record": True})
    assert result["changed"] and result["upgrade"] == {}
    assert json.loads(state.read_text()) == {"version": "4.5.1"}
    assert not run({"path": str(checkout), "record": True})[1]["changed"]


def test_steps_that_did_not_bring_the_target_are_refused(checkout, run):
    code, result, _out = run({"path": str(checkout), "upgrade_from": "4.5.0", "upgrade_to": "4.5.1", "upgrade_code_ready": True})
    assert code != 0 and "version.rb says 4.5.0 after the upgrade's steps, not its target 4.5.1" in result["msg"]
