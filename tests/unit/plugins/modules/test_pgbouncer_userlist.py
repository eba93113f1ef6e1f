from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import pgbouncer_userlist as module

ME = os.getuid()


@pytest.fixture
def run(run_module):
    # The test runs unprivileged: own user and group instead of postgres.
    import grp
    import pwd
    base = {"owner": pwd.getpwuid(ME).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}
    return lambda args: run_module(module, dict(base, **args))


USERS = [{"name": "mastodon", "password": "s3cret-pw"}, {"name": "pgbouncer", "password": "admin-pw"}]


def test_creates_file_with_mode_and_is_idempotent(tmp_path, run):
    path = tmp_path / "userlist.txt"
    code, result, out = run({"path": str(path), "users": USERS, "auth_type": "md5"})
    assert code == 0 and result["changed"] is True
    assert result["added"] == ["mastodon", "pgbouncer"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert '"mastodon" "md5' in path.read_text()
    assert "s3cret-pw" not in out and "admin-pw" not in out
    code, result, _out = run({"path": str(path), "users": USERS, "auth_type": "md5"})
    assert code == 0 and result["changed"] is False


def test_scram_kept_across_runs_and_diff_masks_secrets(tmp_path, run):
    path = tmp_path / "userlist.txt"
    path.write_text("; keep me\n")
    code, result, out = run({"path": str(path), "users": USERS, "_ansible_diff": True})
    assert code == 0 and result["changed"]
    text = path.read_text()
    assert text.startswith("; keep me\n") and text.count("SCRAM-SHA-256$4096:") == 2
    for line in text.splitlines()[1:]:
        assert line.split('" "')[1].rstrip('"') not in out
    assert '"mastodon" "********"' in result["diff"]["after"]
    code, result, _out = run({"path": str(path), "users": USERS, "_ansible_diff": True})
    assert result["changed"] is False and path.read_text() == text


def test_check_mode_reports_without_writing(tmp_path, run):
    path = tmp_path / "userlist.txt"
    code, result, _out = run({"path": str(path), "users": USERS, "_ansible_check_mode": True})
    assert code == 0 and result["changed"] is True and not path.exists()


def test_invalid_name_fails_and_leaves_file_alone(tmp_path, run):
    path = tmp_path / "userlist.txt"
    path.write_text('"other" "x"\n')
    code, result, _out = run({"path": str(path), "users": [{"name": "a\nb", "password": "p"}]})
    assert code == 1 and "userlist.txt cannot hold" in result["msg"]
    assert path.read_text() == '"other" "x"\n'
    code, result, _out = run({"path": str(path), "users": [{"name": "x" * 128, "password": "p"}]})
    assert code == 1 and "shorter name" in result["msg"]


def test_missing_password_is_an_error(tmp_path, run):
    code, result, _out = run({"path": str(tmp_path / "u"), "users": [{"name": "m"}]})
    assert code == 1 and "password is required" in result["msg"]


def test_exclusive_and_absent(tmp_path, run):
    path = tmp_path / "userlist.txt"
    path.write_text('"old" "x"\n"gone" "y"\n')
    code, result, _out = run({"path": str(path), "exclusive": True, "auth_type": "md5",
                              "users": [{"name": "mastodon", "password": "password"},
                                        {"name": "gone", "state": "absent"}]})
    assert code == 0 and result["removed"] == ["gone", "old"]
    assert path.read_text() == '"mastodon" "md5d75bb2be2d7086c6148944261a00f605"\n'
