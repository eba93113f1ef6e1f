from __future__ import annotations

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import service_apply as sa

SHOW = """Id=pgbouncer.service
ActiveState=active
ActiveEnterTimestamp=Tue 2026-12-01 14:00:00.500000 UTC
NeedDaemonReload=no
FragmentPath=/lib/systemd/system/pgbouncer.service
DropInPaths=/etc/systemd/system/pgbouncer.service.d/fediops-limits.conf /etc/systemd/system/pgbouncer.service.d/x.conf
EnvironmentFiles=/etc/default/pgbouncer (ignore_errors=yes)

Id=mastodon-web.service
ActiveState=active
ActiveEnterTimestamp=
NeedDaemonReload=yes
FragmentPath=/etc/systemd/system/mastodon-web.service
DropInPaths=
EnvironmentFiles=
"""
STARTED = 1796133600.5  # 2026-12-01 14:00:00.5 UTC
UNIT = sa.parse_show(SHOW)[0]
INI = "[databases]\n* = host=127.0.0.1\n[pgbouncer]\nlisten_port = 6432\ndefault_pool_size = 20\n"


def test_parse_show_splits_units_and_keeps_empty_values():
    units = sa.parse_show(SHOW)
    assert [u["Id"] for u in units] == ["pgbouncer.service", "mastodon-web.service"]
    assert units[1]["ActiveEnterTimestamp"] == ""


def test_timestamps():
    assert sa.parse_timestamp("Tue 2026-12-01 14:00:00.500000 UTC") == STARTED
    assert sa.parse_timestamp("2026-12-01 14:00:00.500000 UTC") == STARTED
    assert sa.parse_timestamp("") is None
    assert sa.parse_timestamp("n/a") is None
    with pytest.raises(ValueError):
        sa.parse_timestamp("Tue 2026-12-01 14:00:00 CET")


def test_start_files_take_unit_dropins_and_environment_files():
    assert sa.start_files(UNIT) == [
        "/lib/systemd/system/pgbouncer.service",
        "/etc/systemd/system/pgbouncer.service.d/fediops-limits.conf",
        "/etc/systemd/system/pgbouncer.service.d/x.conf",
        "/etc/default/pgbouncer",
    ]


def test_nothing_newer_than_the_start_needs_nothing():
    mtimes = {p: STARTED - 10 for p in sa.start_files(UNIT)}
    assert sa.decide(UNIT, mtimes) == (None, "")


def test_a_dropin_written_after_the_start_restarts_even_when_this_run_did_not_write_it():
    mtimes = {"/etc/systemd/system/pgbouncer.service.d/fediops-limits.conf": STARTED + 1}
    action, reason = sa.decide(UNIT, mtimes)
    assert action == "restart" and "fediops-limits.conf" in reason


def test_a_restart_file_restarts_and_a_missing_one_does_not():
    assert sa.decide(UNIT, {"/env": STARTED + 1}, restart_files=["/env"])[0] == "restart"
    assert sa.decide(UNIT, {"/env": None}, restart_files=["/env"]) == (None, "")


def test_unknown_start_time_restarts():
    assert sa.decide(sa.parse_show(SHOW)[1], {})[0] == "restart"


def test_reload_file_newer_than_start_and_last_reload():
    mtimes = {"/u": STARTED + 5}
    assert sa.decide(UNIT, mtimes, reload_files=["/u"])[0] == "reload"
    record = {"started": STARTED, "applied": STARTED + 6, "settings": {}}
    assert sa.decide(UNIT, mtimes, reload_files=["/u"], record=record) == (None, "")
    # A record of an earlier life of the process says nothing about this one.
    stale = {"started": STARTED - 100, "applied": STARTED + 6, "settings": {}}
    assert sa.decide(UNIT, mtimes, reload_files=["/u"], record=stale)[0] == "reload"


def test_settings_file_reloads_when_only_reloadable_settings_changed():
    now = sa.restart_settings(INI.replace("20", "30"), "pgbouncer")
    record = {"started": STARTED, "applied": STARTED, "settings": sa.restart_settings(INI, "pgbouncer")}
    action = sa.decide(UNIT, {"/ini": STARTED + 1}, reload_files=["/ini"], settings_file="/ini",
                       settings=now, record=record)[0]
    assert action == "reload"


def test_settings_file_restarts_when_a_start_only_setting_changed():
    now = sa.restart_settings(INI.replace("6432", "6433"), "pgbouncer")
    record = {"started": STARTED, "applied": STARTED, "settings": sa.restart_settings(INI, "pgbouncer")}
    action, reason = sa.decide(UNIT, {"/ini": STARTED + 1}, reload_files=["/ini"], settings_file="/ini",
                               settings=now, record=record)
    assert action == "restart" and "listen_port" in reason


def test_settings_file_changed_without_a_record_restarts():
    now = sa.restart_settings(INI, "pgbouncer")
    action, reason = sa.decide(UNIT, {"/ini": STARTED + 1}, reload_files=["/ini"], settings_file="/ini", settings=now)
    assert action == "restart" and "unknown" in reason


def test_redis_settings_changed_live_only_need_nothing_from_systemd():
    old = "port 6380\nmaxmemory 256mb\nrequirepass x\n"
    record = {"started": STARTED, "applied": STARTED, "settings": sa.restart_settings(old, "redis")}
    assert "requirepass" not in record["settings"] and "maxmemory" not in record["settings"]
    now = sa.restart_settings(old.replace("256mb", "512mb"), "redis")
    assert sa.decide(UNIT, {"/c": STARTED + 1}, settings_file="/c", settings=now, record=record) == (None, "")
    now = sa.restart_settings(old.replace("6380", "6381"), "redis")
    assert sa.decide(UNIT, {"/c": STARTED + 1}, settings_file="/c", settings=now, record=record)[0] == "restart"


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        sa.restart_settings("", "nginx")


def test_record_name_has_no_slash():
    assert sa.record_name("a/b@1.service") == "a_b@1.service.json"


def test_a_removed_dropin_restarts_when_the_record_knows_it():
    mtimes = {p: STARTED - 10 for p in sa.start_files(UNIT)}
    files = sa.present_files(UNIT, mtimes) + ["/etc/systemd/system/pgbouncer.service.d/old.conf"]
    record = {"started": STARTED, "applied": STARTED, "settings": {}, "files": files}
    action, reason = sa.decide(UNIT, mtimes, record=record)
    assert action == "restart" and "old.conf was removed" in reason
    record["files"] = sa.present_files(UNIT, mtimes)
    assert sa.decide(UNIT, mtimes, record=record) == (None, "")


def test_settings_of_a_record_from_before_a_manual_restart_still_count():
    old = sa.restart_settings(INI, "pgbouncer")
    record = {"started": STARTED - 100, "applied": STARTED - 50, "settings": old}
    assert sa.decide(UNIT, {"/ini": STARTED + 1}, reload_files=["/ini"], settings_file="/ini",
                     settings=sa.restart_settings(INI.replace("20", "30"), "pgbouncer"), record=record)[0] == "reload"
    assert sa.decide(UNIT, {"/ini": STARTED + 1}, reload_files=["/ini"], settings_file="/ini",
                     settings=sa.restart_settings(INI.replace("6432", "1"), "pgbouncer"), record=record)[0] == "restart"


def test_callers_with_other_restart_files_agree_on_what_was_removed():
    mtimes = {p: STARTED - 10 for p in sa.start_files(UNIT)}
    mtimes["/env"] = STARTED - 10
    record = {"started": STARTED, "applied": STARTED, "settings": {}, "files": sa.present_files(UNIT, mtimes)}
    assert "/env" not in record["files"]
    assert sa.decide(UNIT, mtimes, restart_files=["/env"], record=record) == (None, "")
    assert sa.decide(UNIT, mtimes, record=record) == (None, "")


def test_pending_files_predict_in_check_mode():
    mtimes = {p: STARTED - 10 for p in sa.start_files(UNIT)}
    dropin = "/etc/systemd/system/pgbouncer.service.d/fediops-limits.conf"
    assert sa.decide(UNIT, mtimes, pending=[dropin])[0] == "restart"
    assert sa.decide(UNIT, mtimes, pending=["/etc/systemd/system/pgbouncer.service.d/new.conf"])[0] == "restart"
    assert sa.decide(UNIT, mtimes, pending=["/etc/systemd/system/other.service.d/new.conf"]) == (None, "")
    assert sa.decide(UNIT, mtimes, reload_files=["/u"], pending=["/u"])[0] == "reload"
    assert sa.decide(UNIT, mtimes, restart_files=["/env"], pending=["/env"])[0] == "restart"
    instance = dict(UNIT, Id="mastodon-sidekiq@push.service", DropInPaths="", EnvironmentFiles="")
    assert sa.decide(instance, {}, pending=["/etc/systemd/system/mastodon-sidekiq@.service"])[0] == "restart"
    assert sa.decide(instance, {}, pending=["/etc/systemd/system/mastodon-sidekiq@.service.d/x.conf"])[0] == "restart"
    assert sa.decide(instance, {}, pending=["/etc/systemd/system/mastodon-sidekiq@pull.service.d/x.conf"]) == (None, "")


def test_a_oneshot_unit_is_never_restarted_but_still_reloaded():
    group = dict(UNIT, Id="mastodon-streaming.service", Type="oneshot")
    assert sa.decide(group, {"/lib/systemd/system/pgbouncer.service": STARTED + 5}) == (None, "")
    assert sa.decide(group, {}, pending=["/etc/systemd/system/mastodon-streaming.service"]) == (None, "")
    # Debian's postgresql.service passes a reload on to its clusters (ReloadPropagatedFrom=).
    umbrella = dict(UNIT, Id="postgresql.service", Type="oneshot")
    assert sa.decide(umbrella, {"/hba": STARTED + 5}, reload_files=["/hba"])[0] == "reload"
    assert sa.decide(umbrella, {}, reload_files=["/hba"], pending=["/hba"])[0] == "reload"


# Starting and stopping: what a unit that must (not) run needs, from its `systemctl show` dict.
@pytest.mark.parametrize("active, file_state, stopped_before, actions", [
    ("active", "enabled", False, []),
    ("activating", "enabled", False, []),
    ("inactive", "enabled", False, ["start"]),
    ("failed", "disabled", False, ["start", "enable"]),
    ("active", "disabled", False, ["enable"]),
    # Static and indirect units have nothing to enable (a template instance without [Install]).
    ("inactive", "static", False, ["start"]),
    ("active", "indirect", False, []),
    # Check mode: an earlier call of the run would stop it (the single mastodon-streaming.service that the group
    # unit of the same name replaces), so the real run starts it again.
    ("active", "enabled", True, ["start"]),
])
def test_start_actions(active, file_state, stopped_before, actions):
    unit = {"Id": "u.service", "LoadState": "loaded", "ActiveState": active, "UnitFileState": file_state}
    assert sa.start_actions(unit, stopped_before=stopped_before) == actions


def test_a_unit_systemd_does_not_know_yet_is_started_and_enabled():
    unit = {"Id": "mastodon-sidekiq@push.service", "LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}
    assert sa.start_actions(unit) == ["start", "enable"]
    assert sa.start_reason(unit) == "not installed yet"
    assert sa.start_reason(dict(unit, LoadState="loaded")) == "was inactive"


@pytest.mark.parametrize("active, file_state, actions", [
    ("active", "enabled", ["stop", "disable"]),
    ("inactive", "enabled", ["disable"]),
    ("failed", "disabled", ["reset-failed"]),
    ("inactive", "disabled", []),
    ("deactivating", "linked", ["stop", "disable"]),
    ("inactive", "static", []),
])
def test_stop_actions(active, file_state, actions):
    assert sa.stop_actions({"ActiveState": active, "UnitFileState": file_state}) == actions


def test_stop_targets_take_loaded_and_enabled_units_but_keep_the_wanted_and_templates():
    loaded = ["mastodon-streaming@4000.service", "mastodon-streaming@4002.service", "mastodon-streaming.service"]
    # An instance enabled at boot that is not loaded is listed by no systemctl command: only by its link.
    links = ["mastodon-streaming@4003.service", "mastodon-streaming@.service", "mastodon-web.service"]
    assert sa.stop_targets(["mastodon-streaming@*.service"], loaded, links, keep=["mastodon-streaming@4000.service"]) == [
        "mastodon-streaming@4002.service", "mastodon-streaming@4003.service"]
    assert sa.stop_targets(["mastodon-sidekiq.service"], ["mastodon-sidekiq.service"], []) == ["mastodon-sidekiq.service"]
    assert sa.stop_targets(["mastodon-sidekiq.service"], [], []) == []


def test_units_an_earlier_call_would_stop_are_read_from_pending_done():
    done = ["pgbouncer.service /etc/pgbouncer/pgbouncer.ini", "mastodon-sidekiq.service stopped"]
    assert sa.stopped_earlier(done) == {"mastodon-sidekiq.service"}
    assert sa.is_pattern("mastodon-streaming@*.service") and not sa.is_pattern("mastodon-web.service")


def test_a_unit_a_package_would_start_restarts_for_a_pending_dropin_and_reloads_for_a_pending_file():
    unit = sa.package_started("pgbouncer.service")
    dropin = "/etc/systemd/system/pgbouncer.service.d/fediops-limits.conf"
    assert sa.decide(unit, {}, reload_files=["/ini"], pending=[dropin, "/ini"])[0] == "restart"
    assert sa.decide(unit, {}, reload_files=["/ini"], pending=["/ini"])[0] == "reload"
    assert sa.decide(unit, {}, reload_files=["/ini"]) == (None, "")
