"""systemd_dropin module: writes, rewrites nothing on a rerun, removes the file and then the empty folder."""

from __future__ import annotations

import os

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import unit_files
from ansible_collections.fediops.mastodon.plugins.modules import systemd_dropin as module


@pytest.fixture
def unit_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(unit_files, "dropin_path", lambda unit, name: str(tmp_path / (unit + ".d") / (name + ".conf")))
    monkeypatch.setattr(unit_files, "write_atomically",
                        lambda path, text, **_kw: open(path, "w", encoding="utf-8").write(text))
    return tmp_path / "pgbouncer.service.d"


ARGS = {"unit": "pgbouncer.service", "name": "fediops", "settings": {"Service": {"LimitNOFILE": 4096}}}


def test_write_then_nothing_to_do(unit_dir, run_module, monkeypatch):
    monkeypatch.setattr(module.AnsibleModule, "set_fs_attributes_if_different", lambda self, args, changed: changed)
    code, result, _out = run_module(module, dict(ARGS, _ansible_check_mode=True))
    assert code == 0 and result["changed"] and result["dropin_changed"] and not unit_dir.exists()
    code, result, _out = run_module(module, ARGS)
    assert code == 0 and result["changed"] and (unit_dir / "fediops.conf").read_text().endswith("LimitNOFILE=4096\n")
    code, result, _out = run_module(module, ARGS)
    assert code == 0 and not result["changed"]


def test_absent_removes_the_file_and_the_empty_folder_only(unit_dir, run_module):
    unit_dir.mkdir()
    (unit_dir / "fediops.conf").write_text("x")
    (unit_dir / "operator.conf").write_text("y")
    code, result, _out = run_module(module, dict(ARGS, state="absent"))
    assert code == 0 and result["dropin_changed"] and sorted(os.listdir(unit_dir)) == ["operator.conf"]
    (unit_dir / "operator.conf").unlink()
    code, result, _out = run_module(module, dict(ARGS, state="absent"))
    assert code == 0 and result["changed"] and not result["dropin_changed"] and not unit_dir.exists()
    code, result, _out = run_module(module, dict(ARGS, state="absent"))
    assert code == 0 and not result["changed"]


def test_a_bad_setting_fails_before_any_write(unit_dir, run_module):
    code, result, _out = run_module(module, dict(ARGS, settings={"Service": {"Environment": "A=1\nB=2"}}))
    assert code == 1 and "line break" in result["msg"] and not unit_dir.exists()


def test_several_dropins_in_one_call_and_a_bad_one_writes_none(tmp_path, monkeypatch, run_module):
    monkeypatch.setattr(unit_files, "dropin_path", lambda unit, name: str(tmp_path / (unit + ".d") / (name + ".conf")))
    monkeypatch.setattr(unit_files, "write_atomically",
                        lambda path, text, **_kw: open(path, "w", encoding="utf-8").write(text))
    monkeypatch.setattr(module.AnsibleModule, "set_fs_attributes_if_different", lambda self, args, changed: changed)
    dropins = [{"unit": "a@1.service", "settings": {"Service": {"Environment": "X=1"}}},
               {"unit": "a@2.service", "settings": {"Service": {"Environment": "X=2\nY"}}}]
    code, result, _out = run_module(module, {"name": "q", "dropins": dropins})
    assert code == 1 and "line break" in result["msg"] and not (tmp_path / "a@1.service.d").exists()
    dropins[1]["settings"] = {"Service": {"Environment": "X=2"}}
    code, result, _out = run_module(module, {"name": "q", "dropins": dropins, "_ansible_diff": True})
    assert code == 0 and result["changed"] and [d["dropin_changed"] for d in result["dropins"]] == [True, True]
    assert len(result["diff"]) == 2 and (tmp_path / "a@2.service.d" / "q.conf").read_text().endswith("X=2\n")
    dropins[0]["state"] = "absent"
    code, result, _out = run_module(module, {"name": "q", "dropins": dropins})
    assert code == 0 and [d["dropin_changed"] for d in result["dropins"]] == [True, False]
    assert not (tmp_path / "a@1.service.d").exists() and (tmp_path / "a@2.service.d" / "q.conf").exists()
