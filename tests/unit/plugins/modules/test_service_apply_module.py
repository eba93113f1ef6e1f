"""service_apply module against a stand-in for systemctl: what a preview names on a fresh host is what the real
run then does (starts of units not there yet, the restart of a unit a package starts, a unit stopped and started
again), and the real run's order (stop, enable, start, restart)."""

from __future__ import annotations

import fnmatch
import os
import time

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import service_run
from ansible_collections.fediops.mastodon.plugins.modules import service_apply as module

OLD = "Tue 2026-12-01 14:00:00.000000 UTC"


class FakeSystemd:
    """Units as `systemctl show` describes them, and the commands the module ran."""

    def __init__(self, units, files=()):
        self.units = {name: dict({"Id": name, "Type": "simple", "LoadState": "loaded", "ActiveState": "inactive",
                                  "ActiveEnterTimestamp": "", "NeedDaemonReload": "no", "UnitFileState": "disabled",
                                  "FragmentPath": "", "DropInPaths": "", "EnvironmentFiles": ""}, **props)
                      for name, props in units.items()}
        self.files = set(files)  # unit files on disk: a unit with one is loaded when looked at
        self.commands = []

    def unit(self, name):
        if name not in self.units:
            state = "loaded" if any(name == f or name.split("@")[0] + "@." + name.rsplit(".", 1)[-1] == f
                                    for f in self.files) else "not-found"
            self.units[name] = {"Id": name, "Type": "simple", "LoadState": state, "ActiveState": "inactive",
                                "ActiveEnterTimestamp": "", "NeedDaemonReload": "no",
                                "UnitFileState": "disabled" if state == "loaded" else "", "FragmentPath": "",
                                "DropInPaths": "", "EnvironmentFiles": ""}
        return self.units[name]

    def run(self, argv, check_rc=False, **_kwargs):
        assert argv[0] == "systemctl"
        verb, rest = argv[1], [a for a in argv[2:] if a != "--"]
        names = [a for a in rest if not a.startswith("--")]
        if verb != "show" and verb != "list-units":
            self.commands.append(" ".join([verb] + names))
        if verb == "list-units":
            state = [a for a in rest if a.startswith("--state=")]
            listed = [u for u in self.units.values() if u["LoadState"] == "loaded"
                      and any(fnmatch.fnmatchcase(u["Id"], p) for p in names)
                      and (not state or u["ActiveState"] == "active")]
            return 0, "".join("%s loaded %s x y\n" % (u["Id"], u["ActiveState"]) for u in listed), ""
        if verb == "show":
            return 0, "\n".join("\n".join("%s=%s" % kv for kv in self.unit(n).items()) + "\n" for n in names), ""
        for name in names:
            unit = self.unit(name) if verb != "daemon-reload" else None
            if verb in ("start", "restart"):
                # Now, as systemd records it: after every file written before the start.
                unit.update(ActiveState="active",
                            ActiveEnterTimestamp=time.strftime("%a %Y-%m-%d %H:%M:%S.999999 UTC", time.gmtime()))
            elif verb == "stop":
                unit.update(ActiveState="inactive", ActiveEnterTimestamp="")
            elif verb == "enable":
                unit["UnitFileState"] = "enabled"
            elif verb == "disable":
                unit["UnitFileState"] = "disabled"
        return 0, "", ""


@pytest.fixture
def systemd(monkeypatch, tmp_path):
    def make(units, files=(), links=()):
        fake = FakeSystemd(units, files)
        monkeypatch.setattr(module.AnsibleModule, "run_command", lambda self, argv, **kw: fake.run(argv, **kw))
        monkeypatch.setattr(service_run, "_enabled_links", lambda: set(links))
        return fake
    return make


def args(tmp_path, **kwargs):
    return dict(kwargs, state_dir=str(tmp_path / "state"))


def test_a_preview_on_a_fresh_host_names_the_starts_of_units_not_there_yet(systemd, run_module, tmp_path):
    systemd({"mastodon-sidekiq.service": {"ActiveState": "active", "UnitFileState": "enabled",
                                          "ActiveEnterTimestamp": OLD}})
    units = ["mastodon-sidekiq@default.service", "mastodon-sidekiq@push.service"]
    code, result, _output = run_module(module, args(tmp_path, start=units, _ansible_check_mode=True,
                                                    pending_files=["/etc/systemd/system/mastodon-sidekiq@.service"]))
    assert code == 0 and result["changed"]
    assert result["started"] == units and result["enabled"] == units and result["restarted"] == []
    assert result["reasons"]["mastodon-sidekiq@push.service"] == "not installed yet"


def test_the_real_run_starts_them_after_reading_the_new_unit_file(systemd, run_module, tmp_path):
    fake = systemd({"mastodon-sidekiq.service": {"ActiveState": "active", "UnitFileState": "enabled",
                                                 "ActiveEnterTimestamp": OLD}},
                   files=["mastodon-sidekiq@.service"])
    units = ["mastodon-sidekiq@default.service", "mastodon-sidekiq@push.service"]
    code, result, _output = run_module(module, args(tmp_path, start=units))
    assert code == 0 and result["started"] == units and result["restarted"] == []
    assert fake.commands == ["enable " + " ".join(units), "start " + " ".join(units)]
    code, result, _output = run_module(module, args(tmp_path, start=units))
    assert code == 0 and not result["changed"] and fake.commands[2:] == []


def test_a_unit_without_a_file_fails_the_real_run_naming_it(systemd, run_module, tmp_path):
    systemd({})
    code, result, _output = run_module(module, args(tmp_path, start=["mastodon-web.service"]))
    assert code == 1 and "mastodon-web.service cannot start" in result["msg"] and "not-found" in result["msg"]


def test_a_unit_a_package_would_start_is_predicted_restarted_as_the_real_run_does(systemd, run_module, tmp_path):
    systemd({})
    dropin = "/etc/systemd/system/pgbouncer.service.d/fediops-limits.conf"
    code, result, _output = run_module(module, args(
        tmp_path, start=["pgbouncer.service"], package_started=["pgbouncer.service"], reload_files=["/etc/pgbouncer/x.ini"],
        pending_files=[dropin, "/etc/pgbouncer/x.ini"], _ansible_check_mode=True))
    assert code == 0 and result["started"] == [] and result["restarted"] == ["pgbouncer.service"]
    # Reported once: a later call of the run does not name it again for the same files.
    assert "pgbouncer.service %s" % dropin in result["ansible_facts"]["fediops_pending_done"]


def test_a_unit_stopped_by_an_earlier_call_is_started_again_and_never_restarted(systemd, run_module, tmp_path):
    systemd({"mastodon-streaming.service": {"ActiveState": "active", "UnitFileState": "enabled",
                                            "ActiveEnterTimestamp": OLD}})
    env = "/home/mastodon/live/.env.production"
    code, first, _output = run_module(module, args(tmp_path, stop=["mastodon-streaming.service"], _ansible_check_mode=True))
    assert code == 0 and first["stopped"] == ["mastodon-streaming.service"]
    done = first["ansible_facts"]["fediops_pending_done"]
    code, result, _output = run_module(module, args(tmp_path, start=["mastodon-streaming.service"], pending_done=done,
                                                    _ansible_check_mode=True))
    assert code == 0 and result["started"] == ["mastodon-streaming.service"]
    # Mastodon's restart of every unit on an older .env.production leaves it alone: the real run stopped it.
    code, result, _output = run_module(module, args(tmp_path, units=["mastodon-streaming*.service"], restart_files=[env],
                                                    pending_files=[env], pending_done=done, _ansible_check_mode=True))
    assert code == 0 and result["restarted"] == [] and not result["changed"]
    code, result, _output = run_module(module, args(tmp_path, units=["mastodon-streaming*.service"], restart_files=[env],
                                                    pending_files=[env], _ansible_check_mode=True))
    assert result["restarted"] == ["mastodon-streaming.service"]


def test_stop_takes_patterns_and_keeps_the_units_to_start(systemd, run_module, tmp_path):
    running = {"ActiveState": "active", "UnitFileState": "enabled", "ActiveEnterTimestamp": OLD}
    fake = systemd({"mastodon-streaming@4000.service": running, "mastodon-streaming@4002.service": running,
                    "mastodon-streaming@4003.service": {"ActiveState": "failed"}},
                   links=["mastodon-streaming@4004.service"])
    fake.units["mastodon-streaming@4004.service"] = dict(fake.unit("mastodon-streaming@4004.service"),
                                                         LoadState="loaded", UnitFileState="enabled")
    code, result, _output = run_module(module, args(tmp_path, start=["mastodon-streaming@4000.service"],
                                                    stop=["mastodon-streaming@*.service"]))
    assert code == 0 and result["stopped"] == ["mastodon-streaming@4002.service"]
    assert result["disabled"] == ["mastodon-streaming@4002.service", "mastodon-streaming@4004.service"]
    assert fake.commands == ["stop mastodon-streaming@4002.service",
                             "disable mastodon-streaming@4002.service mastodon-streaming@4004.service",
                             "reset-failed mastodon-streaming@4003.service"]


def test_a_running_unit_to_start_restarts_on_a_newer_dropin_and_quiet_goes_first(systemd, run_module, tmp_path):
    dropin = tmp_path / "x.conf"
    dropin.write_text("[Service]\n")
    running = {"ActiveState": "active", "UnitFileState": "enabled", "ActiveEnterTimestamp": OLD,
               "DropInPaths": str(dropin)}
    fake = systemd({"mastodon-sidekiq@push.service": running, "mastodon-web.service": running})
    code, result, _output = run_module(module, args(tmp_path, start=["mastodon-sidekiq@push.service"],
                                                    units=["mastodon-web.service"], quiet=["mastodon-sidekiq*"]))
    assert code == 0 and result["started"] == []
    assert result["restarted"] == ["mastodon-sidekiq@push.service", "mastodon-web.service"]
    assert fake.commands == ["kill mastodon-sidekiq@push.service", "restart mastodon-sidekiq@push.service",
                             "restart mastodon-web.service"]


def test_a_preview_names_the_stop_of_a_unit_its_package_would_start(systemd, run_module, tmp_path):
    """metrics: the exporter package starts its own exporter, which the role turns off."""
    systemd({})
    unit = "prometheus-redis-exporter.service"
    code, result, _output = run_module(module, args(tmp_path, stop=[unit], package_started=[unit], _ansible_check_mode=True))
    assert code == 0 and result["stopped"] == [unit] and result["disabled"] == [unit]
    code, result, _output = run_module(module, args(tmp_path, stop=[unit], _ansible_check_mode=True))
    assert code == 0 and not result["changed"]


def test_a_unit_file_and_a_dropin_written_by_the_same_call_restart_the_unit_once(
        systemd, run_module, tmp_path, monkeypatch):
    """One call writes the template unit and a drop-in, then runs the unit: a preview names the restart for them;
    the real run writes them, reloads systemd once, restarts on them; a rerun changes nothing."""
    from ansible_collections.fediops.mastodon.plugins.module_utils import unit_files
    monkeypatch.setattr(module.AnsibleModule, "set_fs_attributes_if_different", lambda self, args, changed: changed)
    monkeypatch.setattr(unit_files, "write_atomically",
                        lambda path, text, **_kw: open(path, "w", encoding="utf-8").write(text))
    monkeypatch.setattr(unit_files, "dropin_path", lambda unit, name: str(tmp_path / (unit + ".d") / (name + ".conf")))
    template = tmp_path / "mastodon-sidekiq@.service"
    template.write_text("[Service]\nExecStart=old\n")
    os.utime(template, (1764000000, 1764000000))  # older than the unit's start: only the call's own writes count
    unit = "mastodon-sidekiq@push.service"
    fake = systemd({unit: {"ActiveState": "active", "UnitFileState": "enabled", "ActiveEnterTimestamp": OLD,
                           "FragmentPath": str(template)}})
    call = dict(start=[unit], files=[{"path": str(template), "content": "[Service]\nExecStart=new\n"}],
                dropins=[{"unit": unit, "name": "sidekiq-queues", "settings": {"Service": {"Environment": "DB_POOL=5"}}}])
    code, result, _output = run_module(module, args(tmp_path, _ansible_check_mode=True, _ansible_diff=True, **call))
    assert code == 0 and result["restarted"] == [unit] and fake.commands == []
    assert result["written"] == [str(template), str(tmp_path / (unit + ".d") / "sidekiq-queues.conf")]
    assert [d["after"] for d in result["diff"]][0] == "[Service]\nExecStart=new\n"
    assert template.read_text() == "[Service]\nExecStart=old\n"
    code, result, _output = run_module(module, args(tmp_path, **call))
    assert code == 0 and result["daemon_reloaded"] and result["restarted"] == [unit]
    assert fake.commands == ["daemon-reload", "restart " + unit]
    assert template.read_text().endswith("ExecStart=new\n")
    code, result, _output = run_module(module, args(tmp_path, **call))
    assert code == 0 and not result["changed"] and result["written"] == [] and fake.commands[2:] == []


def test_a_bad_dropin_writes_nothing(systemd, run_module, tmp_path):
    systemd({})
    target = tmp_path / "x.service"
    code, result, _output = run_module(module, args(tmp_path, start=["x.service"],
                                                    files=[{"path": str(target), "content": "[Unit]\n"}],
                                                    dropins=[{"unit": "x.service", "settings": {"Bad Section": {}}}]))
    assert code == 1 and "section" in result["msg"] and not target.exists()


def test_a_unit_the_operator_installs_is_required_also_in_a_preview_before_its_dropin_is_written(
        systemd, run_module, tmp_path, monkeypatch):
    from ansible_collections.fediops.mastodon.plugins.module_utils import unit_files
    monkeypatch.setattr(unit_files, "dropin_path", lambda unit, name: str(tmp_path / (unit + ".d") / (name + ".conf")))
    systemd({})
    for check in (True, False):
        code, result, _output = run_module(module, args(
            tmp_path, start=["mastodon-web.service"], missing_msg="set web_unit.", _ansible_check_mode=check,
            dropins=[{"unit": "mastodon-web.service", "settings": {"Service": {"Environment": "X=1"}}}]))
        assert code == 1 and result["msg"] == "service_apply: mastodon-web.service is not-found: set web_unit."
        assert not (tmp_path / "mastodon-web.service.d").exists()


def test_a_file_its_check_refuses_is_left_as_it_is_and_nothing_else_is_written(
        systemd, run_module, tmp_path, monkeypatch):
    from ansible_collections.fediops.mastodon.plugins.module_utils import unit_files
    monkeypatch.setattr(module.AnsibleModule, "set_fs_attributes_if_different", lambda self, args, changed: changed)
    monkeypatch.setattr(unit_files, "write_atomically",
                        lambda path, text, **_kw: open(path, "w", encoding="utf-8").write(text))
    monkeypatch.setattr(unit_files, "dropin_path", lambda unit, name: str(tmp_path / (unit + ".d") / (name + ".conf")))
    monkeypatch.setattr(module.AnsibleModule, "tmpdir", str(tmp_path), raising=False)
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text("[pgbouncer]\nlisten_port = 6432\n")
    fake = systemd({})
    real_run = fake.run

    def run(argv, **kwargs):
        if isinstance(argv, str):  # the check: it refuses a file that names port 1
            return (1, "", "cannot listen on port 1\n") if "= 1\n" in open(argv.split()[-1]).read() else (0, "", "")
        return real_run(argv, **kwargs)
    monkeypatch.setattr(module.AnsibleModule, "run_command", lambda self, argv, **kw: run(argv, **kw))
    dropin = [{"unit": "pgbouncer.service", "name": "fediops-limits", "settings": {"Service": {"LimitNOFILE": 4096}}}]
    code, result, _output = run_module(module, args(tmp_path, files=[
        {"path": str(ini), "content": "[pgbouncer]\nlisten_port = 1\n", "validate": "check %s"}], dropins=dropin))
    assert code == 1 and result["refused"] == str(ini) and "cannot listen on port 1" in result["msg"]
    assert ini.read_text().endswith("= 6432\n") and not (tmp_path / "pgbouncer.service.d").exists()
    code, result, _output = run_module(module, args(tmp_path, files=[
        {"path": str(ini), "content": "[pgbouncer]\nlisten_port = 6433\n", "validate": "check %s"}], dropins=dropin))
    assert code == 0 and ini.read_text().endswith("= 6433\n") and (tmp_path / "pgbouncer.service.d").exists()


def test_a_writer_module_applies_its_service_in_the_same_call(systemd, run_module, tmp_path):
    """pg_hba_block with `service`: the block is written and PostgreSQL reloaded for it in one module call; a preview
    names the same reload; a rerun does neither; a bad `service` option fails before any write, naming it."""
    from ansible_collections.fediops.mastodon.plugins.modules import pg_hba_block

    unit = "postgresql@15-main.service"
    fake = systemd({unit: {"ActiveState": "active", "UnitFileState": "enabled", "ActiveEnterTimestamp": OLD}})
    hba = tmp_path / "pg_hba.conf"
    hba.write_text("local all postgres peer\n")
    hba_time = time.mktime(time.strptime("2026-11-30 12:00:00", "%Y-%m-%d %H:%M:%S"))
    os.utime(hba, (hba_time, hba_time))
    call = dict(path=str(hba), name="pgbouncer", lines=["host all all 127.0.0.1/32 md5"], check=False,
                service=dict(units=[unit], reload_files=[str(hba)], state_dir=str(tmp_path / "state")))

    code, result, _out = run_module(pg_hba_block, dict(call, _ansible_check_mode=True))
    assert code == 0 and result["changed"] and result["service"]["reloaded"] == [unit]
    assert "127.0.0.1/32" not in hba.read_text() and fake.commands == []

    code, result, _out = run_module(pg_hba_block, call)
    assert code == 0 and result["changed_paths"] == [str(hba)] and result["service"]["reloaded"] == [unit]
    assert "127.0.0.1/32" in hba.read_text() and fake.commands == ["reload " + unit]

    code, result, _out = run_module(pg_hba_block, call)
    assert code == 0 and not result["changed"] and result["service"]["reloaded"] == [] and fake.commands == ["reload " + unit]

    code, result, _out = run_module(pg_hba_block, dict(call, lines=["host all all ::1/128 md5"],
                                                       service=dict(units=[unit], reload_file=[str(hba)])))
    assert code == 1 and "service" in result["msg"] and "reload_file" in result["msg"]
    assert "::1/128" not in hba.read_text()


def test_userlist_and_pgbouncer_ini_in_one_call_with_both_diffs(systemd, run_module, tmp_path):
    """pgbouncer_userlist with `service`: userlist.txt, then pgbouncer.ini and PgBouncer's reload; a diff of each,
    userlist.txt's first and masked."""
    from ansible_collections.fediops.mastodon.plugins.modules import pgbouncer_userlist

    unit = "pgbouncer.service"
    fake = systemd({unit: {"ActiveState": "active", "UnitFileState": "enabled", "ActiveEnterTimestamp": OLD}})
    userlist, ini = tmp_path / "userlist.txt", tmp_path / "pgbouncer.ini"
    me = dict(owner=str(os.getuid()), group=str(os.getgid()))
    call = dict(path=str(userlist), users=[{"name": "mastodon", "password": "pw-one"}], auth_type="md5", _ansible_diff=True,
                owner=me["owner"], group=me["group"],
                service=dict(files=[dict(path=str(ini), content="[pgbouncer]\n", **me)], start=[unit],
                             reload_files=[str(ini), str(userlist)], state_dir=str(tmp_path / "state")))
    code, result, out = run_module(pgbouncer_userlist, call)
    assert code == 0 and result["changed"] and result["service"]["written"] == [str(ini)]
    assert result["service"]["reloaded"] == [unit] and fake.commands[-1] == "reload " + unit
    assert [d["after_header"] for d in result["diff"]] == [str(userlist), str(ini)] and "pw-one" not in out
    done = list(fake.commands)
    code, result, _out = run_module(pgbouncer_userlist, call)
    assert code == 0 and not result["changed"] and fake.commands == done
