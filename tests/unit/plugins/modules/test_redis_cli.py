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
