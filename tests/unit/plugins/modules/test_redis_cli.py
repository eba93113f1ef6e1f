"""redis_cli: the password reaches the CLI only through its environment, never argv or the output."""

from __future__ import annotations

import json
import stat

from ansible_collections.fediops.mastodon.plugins.modules import redis_cli as module

FAKE = """#!/bin/sh
# Prints what it was given, as JSON, the way a test can check it.
printf '{"argv": "%s", "auth": "%s", "stdin": "%s"}\\n' "$*" "${REDISCLI_AUTH:-}" "$(cat | tr '\\n' ';')"
"""


def fake_cli(tmp_path):
    cli = tmp_path / "redis-cli"
    cli.write_text(FAKE)
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    return str(cli)


def test_password_goes_to_the_environment_only(tmp_path, run_module):
    code, result, out = run_module(module, {"cli": fake_cli(tmp_path), "port": 6380, "password": "pw-s3cret",
                                            "args": ["CONFIG", "GET", "maxmemory"]})
    assert code == 0 and result["changed"] is False
    seen = json.loads(result["stdout_lines"][0].replace("********", "MASKED"))
    assert seen["argv"] == "-h 127.0.0.1 -p 6380 CONFIG GET maxmemory"
    # The CLI got the password; the module's output masks it wherever it would appear.
    assert seen["auth"] == "MASKED"
    assert "pw-s3cret" not in out


def test_stdin_is_fed_and_never_echoed(tmp_path, run_module):
    code, result, out = run_module(module, {"cli": fake_cli(tmp_path), "stdin": "CONFIG SET requirepass new-s3cret"})
    assert code == 0
    assert "new-s3cret" not in out


def test_a_failing_cli_fails_the_task(tmp_path, run_module):
    cli = tmp_path / "redis-cli"
    cli.write_text("#!/bin/sh\necho NOAUTH >&2\nexit 1\n")
    cli.chmod(0o755)
    code, result, _out = run_module(module, {"cli": str(cli), "args": ["PING"]})
    assert code == 1 and "NOAUTH" in result["msg"]


FAKE_SERVER = """#!/bin/sh
# CONFIG GET answers from a fixed running state; commands on stdin are recorded and answered OK.
case "$*" in
  *"CONFIG GET"*) printf 'maxmemory\\n1000\\nmaxmemory-policy\\nallkeys-lru\\nrequirepass\\nold-s3cret\\n' ;;
  *) while read -r line; do echo "$line" >> "$0.sent"; echo OK; done ;;
esac
"""


def fake_server(tmp_path):
    cli = tmp_path / "redis-cli"
    cli.write_text(FAKE_SERVER)
    cli.chmod(0o755)
    return cli


def test_settings_mode_sets_what_differs_and_names_it_only(tmp_path, run_module):
    cli = fake_server(tmp_path)
    code, result, out = run_module(module, {
        "cli": str(cli), "password": "old-s3cret", "new_password": "new-s3cret",
        "settings": [["maxmemory", "2000"], ["maxmemory-policy", "allkeys-lru"]]})
    assert code == 0 and result["changed"] is True
    assert result["differ"] == ["maxmemory", "requirepass"]
    sent = (tmp_path / "redis-cli.sent").read_text()
    # requirepass goes last, so the earlier commands still authenticate with the old password.
    assert sent.splitlines()[0].startswith("CONFIG SET maxmemory") and "requirepass" in sent.splitlines()[-1]
    assert "new-s3cret" not in out and "old-s3cret" not in out


def test_settings_mode_in_check_mode_sets_nothing(tmp_path, run_module):
    cli = fake_server(tmp_path)
    code, result, _out = run_module(module, {
        "cli": str(cli), "password": "old-s3cret", "new_password": "old-s3cret",
        "settings": [["maxmemory", "1000"], ["maxmemory-policy", "allkeys-lfu"]], "_ansible_check_mode": True})
    assert code == 0 and result["differ"] == ["maxmemory-policy"]
    assert not (tmp_path / "redis-cli.sent").exists()
