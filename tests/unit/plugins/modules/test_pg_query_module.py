"""pg_query module: the secret reaches psql on stdin only; writes are not run in check mode."""

from __future__ import annotations

import json
import stat

from ansible_collections.fediops.mastodon.plugins.modules import pg_query as module

# Stands in for psql: records its argv, environment and stdin, and answers one row.
FAKE = """#!/bin/sh
printf '{"argv": "%s", "pgpassword": "%s"}' "$*" "${PGPASSWORD:-}" > "$(dirname "$0")/seen.json"
cat > "$(dirname "$0")/stdin.sql"
[ -n "$FAKE_FAIL" ] && { echo "psql: error: connection refused" >&2; exit 2; }
printf 't\\037x\\000'
"""


def fake_psql(tmp_path, monkeypatch):
    psql = tmp_path / "psql"
    psql.write_text(FAKE)
    psql.chmod(psql.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", "%s:/usr/bin:/bin" % tmp_path)
    return tmp_path


def test_secret_and_password_never_reach_argv_or_the_output(tmp_path, monkeypatch, run_module):
    where = fake_psql(tmp_path, monkeypatch)
    code, result, out = run_module(module, {"query": "ALTER ROLE :\"role\" PASSWORD :'secret'", "params": {"role": "m"},
                                            "secret": "SCRAM-s3cret", "password": "pw-s3cret", "os_user": "",
                                            "write": True})
    assert code == 0 and result["changed"] is True
    seen = json.loads((where / "seen.json").read_text(), strict=False)
    assert "s3cret" not in seen["argv"] and seen["pgpassword"] == "pw-s3cret"
    assert "\\set secret 'SCRAM-s3cret'" in (where / "stdin.sql").read_text()
    assert "s3cret" not in out


def test_a_read_returns_rows_and_changes_nothing(tmp_path, monkeypatch, run_module):
    fake_psql(tmp_path, monkeypatch)
    code, result, _out = run_module(module, {"query": "SELECT 1", "os_user": ""})
    assert code == 0 and result["changed"] is False
    assert result["rows"] == [["t", "x"]] and result["value"] == "t"


def test_a_write_is_not_run_in_check_mode(tmp_path, monkeypatch, run_module):
    where = fake_psql(tmp_path, monkeypatch)
    code, result, _out = run_module(module, {"query": "SELECT 1", "os_user": "", "write": True, "_ansible_check_mode": True})
    assert code == 0 and result["changed"] is True and result["rows"] == []
    assert not (where / "stdin.sql").exists()


def test_a_failure_fails_or_is_returned(tmp_path, monkeypatch, run_module):
    fake_psql(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_FAIL", "1")
    code, result, _out = run_module(module, {"query": "SELECT 1", "os_user": ""})
    assert code == 1 and "connection refused" in result["msg"]
    code, result, _out = run_module(module, {"query": "SELECT 1", "os_user": "", "on_error": "return"})
    assert code == 0 and result["ok"] is False and "connection refused" in result["error"]
