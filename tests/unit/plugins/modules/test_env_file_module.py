"""env_file as a module: secrets only through secret_values, and no read or write through a link."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import env_file as module


@pytest.fixture
def run(run_module):
    return lambda args: run_module(module, dict({"create": True}, **args))


def test_secret_values_are_written_and_masked(tmp_path, run):
    path = tmp_path / ".env.production"
    code, result, out = run({"path": str(path), "values": {"DB_HOST": "127.0.0.1"},
                             "secret_values": {"DB_PASS": "s3cret-pw"}, "_ansible_diff": True})
    assert code == 0 and result["changed"]
    assert "DB_PASS=s3cret-pw" in path.read_text()
    assert "s3cret-pw" not in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("values", [{"DB_PASS": "x"}, {"SECRET_KEY_BASE": "x"},
                                    {"CACHE_REDIS_URL": "redis://:pw@10.0.0.5:6380/0"}])
def test_a_secret_in_plain_values_is_refused_by_name_only(tmp_path, run, values):
    path = tmp_path / ".env.production"
    path.write_text("A=1\n")
    code, result, _out = run({"path": str(path), "values": values})
    assert code == 1
    assert next(iter(values)) in result["msg"] and "secret_values" in result["msg"]
    assert path.read_text() == "A=1\n"


def test_a_symlinked_env_file_is_refused_and_its_target_untouched(tmp_path, run):
    target = tmp_path / "shadow"
    target.write_text("root:x:secret\n")
    link = tmp_path / ".env.production"
    link.symlink_to(target)
    code, result, out = run({"path": str(link), "values": {"DB_HOST": "127.0.0.1"}, "_ansible_diff": True})
    assert code == 1 and "symbolic link" in result["msg"]
    assert "root:x:secret" not in out
    assert target.read_text() == "root:x:secret\n"


def test_a_non_utf8_env_file_is_an_error_not_a_traceback(tmp_path, run):
    path = tmp_path / ".env.production"
    path.write_bytes(b"A=\xff\n")
    code, result, _out = run({"path": str(path), "values": {"DB_HOST": "127.0.0.1"}})
    assert code == 1 and "not UTF-8" in result["msg"]
    assert path.read_bytes() == b"A=\xff\n"


def test_owner_and_mode_are_set_before_the_rename(tmp_path, run, monkeypatch):
    """The file is never visible with a wider mode: the rename sees the final mode already."""
    path = tmp_path / ".env.production"
    seen = []
    real = os.rename

    def spy(src, dst, src_dir_fd=None, dst_dir_fd=None):
        seen.append(stat.S_IMODE(os.stat(src, dir_fd=src_dir_fd).st_mode))
        return real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "rename", spy)
    code, _result, _out = run({"path": str(path), "values": {"A": "1"}, "mode": "0600"})
    assert code == 0 and seen == [0o600]


def test_check_mode_predicts_and_writes_nothing(tmp_path, run):
    path = tmp_path / ".env.production"
    path.write_text("DB_HOST=db1\n")
    os.chmod(path, 0o600)
    before = path.stat()
    code, result, _out = run({"path": str(path), "values": {"DB_HOST": "127.0.0.1", "DB_PORT": "6432"},
                              "mode": "0640", "_ansible_check_mode": True})
    assert code == 0 and result["changed"] and result["added"] == ["DB_PORT"] and result["updated"] == ["DB_HOST"]
    assert path.read_text() == "DB_HOST=db1\n" and path.stat().st_mtime_ns == before.st_mtime_ns
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_diff_shows_plain_keys_and_masks_secret_ones(tmp_path, run):
    path = tmp_path / ".env.production"
    path.write_text("DB_HOST=db1\nDB_PASS=old-s3cret\n")
    code, result, out = run({"path": str(path), "values": {"DB_HOST": "127.0.0.1"},
                             "secret_values": {"DB_PASS": "new-s3cret"}, "_ansible_diff": True})
    assert code == 0
    assert "DB_HOST=db1" in result["diff"]["before"] and "DB_HOST=127.0.0.1" in result["diff"]["after"]
    assert "s3cret" not in out


def test_an_unchanged_file_with_another_mode_is_only_chmodded(tmp_path, run):
    path = tmp_path / ".env.production"
    path.write_text("DB_HOST=db1\n")
    os.chmod(path, 0o644)
    code, result, _out = run({"path": str(path), "values": {"DB_HOST": "db1"}, "mode": "0640"})
    assert code == 0 and result["changed"] and result["updated"] == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "DB_HOST=db1\n"


@pytest.mark.parametrize("mode, secret, expected", [
    (0o644, True, 0o640),    # Mastodon's setup leaves it 0644: once a password is in it, others may not read it
    (0o600, True, 0o600),    # an operator's stricter mode stays
    (0o666, True, 0o640),
    (0o644, False, 0o644),   # nothing secret: left alone
])
def test_a_file_that_holds_a_secret_is_never_readable_by_others(tmp_path, run, mode, secret, expected):
    path = tmp_path / ".env.production"
    path.write_text("LOCAL_DOMAIN=example.com\n")
    path.chmod(mode)
    args = {"path": str(path), "values": {"DB_HOST": "127.0.0.1"}}
    if secret:
        args["secret_values"] = {"DB_PASS": "pw"}
    code, result, _out = run(args)
    assert code == 0 and result["changed"]
    assert stat.S_IMODE(path.stat().st_mode) == expected
    # A rerun changes nothing, and a file that already holds a secret is tightened even without a new value.
    assert run(args)[1]["changed"] is False
    path.chmod(mode)
    assert run({"path": str(path), "values": {}})[1]["changed"] is (expected != mode)
    assert stat.S_IMODE(path.stat().st_mode) == expected


def test_a_fifo_as_the_env_file_is_refused_at_once(tmp_path, run):
    path = tmp_path / ".env.production"
    os.mkfifo(path)
    code, result, _out = run({"path": str(path), "values": {"DB_HOST": "127.0.0.1"}})
    assert code == 1 and "not a regular file" in result["msg"]


def test_a_secret_passed_in_values_by_mistake_never_reaches_the_journal(tmp_path, run, monkeypatch):
    """AnsibleModule writes "Invoked with <every argument>" to the journal before main() runs."""
    from ansible.module_utils.basic import AnsibleModule
    logged = []
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    path = tmp_path / ".env.production"
    code, result, out = run({"path": str(path), "values": {"DB_PASS": "journal-S3cret", "DB_HOST": "10.0.0.1",
                                                           "CACHE_REDIS_URL": "redis://:url-S3cret@10.0.0.5:6380/0"}})
    assert code == 1 and "DB_PASS" in result["msg"]
    assert logged and "10.0.0.1" in logged[0], logged
    assert not [line for line in logged if "journal-S3cret" in line or "url-S3cret" in line], logged
    assert "journal-S3cret" not in out
