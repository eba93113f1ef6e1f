# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine of fediops.mastodon.service_apply, for that module and for the modules that write a service's files and
then apply them in the same call (their option `service`): one module call on the host, not two. The decisions are
the pure functions of service_apply.py; this runs them against systemctl."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.fediops.mastodon.plugins.module_utils import service_apply as logic
from ansible_collections.fediops.mastodon.plugins.module_utils import text_file
from ansible_collections.fediops.mastodon.plugins.module_utils import unit_files
from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import DropinError


def _show(module, names):
    argv = ["systemctl", "show", "--timestamp=us+utc"] + ["--property=" + p for p in logic.SHOW_PROPERTIES] + ["--"] + names
    out = module.run_command(argv, check_rc=True)[1]
    return logic.parse_show(out)


def _listed(module, patterns, state):
    out = module.run_command(["systemctl", "list-units", "--plain", "--no-legend", "--full", state, "--"] + patterns,
                             check_rc=True)[1]
    return sorted({line.split()[0] for line in out.splitlines() if line.strip()})


def _enabled_links(directory="/etc/systemd/system"):
    """Names of the units enabled through links in DIR/*.wants/ and *.requires/ (instances included)."""
    names = set()
    try:
        folders = [entry for entry in os.listdir(directory) if entry.endswith((".wants", ".requires"))]
    except OSError:
        return names
    for folder in folders:
        try:
            names.update(os.listdir(os.path.join(directory, folder)))
        except OSError:
            continue
    return names


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _read_record(path):
    try:
        return json.loads(text_file.read_text(path) or "null")
    except (OSError, ValueError):
        return None


def _systemctl(module, verb, names, result):
    if names and not module.check_mode:
        rc, out, err = module.run_command(["systemctl", verb, "--"] + names)
        if rc != 0:
            module.fail_json(msg="service_apply: systemctl %s %s failed: %s" % (verb, " ".join(names), (err or out).strip()),
                             **result)


def _write(module, params, result):
    """Write the files and drop-ins asked for; their paths go into result["written"], their diffs into result."""
    for item in params["dropins"]:
        try:
            unit_files.check_dropin(item["unit"], item["name"], item["settings"], item["state"])
        except DropinError as exc:
            module.fail_json(msg="service_apply: %s" % exc)
    # Every new text its check accepts before the first file is written.
    for item in params["files"]:
        if item["validate"] and not module.check_mode:
            try:
                same = text_file.read_text(item["path"]) == item["content"]
            except text_file.TextFileError as exc:
                module.fail_json(msg="service_apply: %s" % exc)
            if not same:
                unit_files.validate_text(module, item["path"], item["content"], item["validate"])
    diffs = []
    for item in params["files"]:
        changed, content_changed, diff = unit_files.apply_file(module, item["path"], item["content"], item["mode"],
                                                               item["owner"], item["group"])
        result["changed"] = result["changed"] or changed
        if content_changed:
            result["written"].append(item["path"])
            diffs.append(diff)
    for item in params["dropins"]:
        changed, dropin_changed, path, diff = unit_files.apply_dropin(module, item["unit"], item["name"], item["settings"],
                                                                      item["state"])
        result["changed"] = result["changed"] or changed
        if dropin_changed:
            result["written"].append(path)
            diffs.append(diff)
    if module._diff and diffs:
        result["diff"] = diffs


# service_apply's options; a caller's `service` option is checked against them (validated()).
SPEC = dict(
    units=dict(type="list", elements="str", default=[]),
    start=dict(type="list", elements="str", default=[]),
    stop=dict(type="list", elements="str", default=[]),
    quiet=dict(type="list", elements="str", default=[]),
    restart_files=dict(type="list", elements="path", default=[]),
    reload_files=dict(type="list", elements="path", default=[]),
    settings=dict(type="dict", options=dict(
        path=dict(type="path", required=True),
        format=dict(type="str", required=True, choices=list(logic.SETTINGS_FORMATS)),
    )),
    pending_files=dict(type="list", elements="path", default=[]),
    pending_done=dict(type="list", elements="str", default=[]),
    package_started=dict(type="list", elements="str", default=[]),
    state_dir=dict(type="path", default="/run/fediops/service_apply"),
    missing_msg=dict(type="str"),
    files=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True),
        content=dict(type="str", required=True),
        mode=dict(type="str", default="0644"),
        owner=dict(type="str", default="root"),
        group=dict(type="str", default="root"),
        validate=dict(type="str"),
    )),
    dropins=dict(type="list", elements="dict", default=[], options=dict(
        unit=dict(type="str", required=True),
        name=dict(type="str", default="fediops"),
        settings=dict(type="dict", default={}),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )),
)


def validated(module, params, name="service"):
    """`params` (a caller's `service` option) checked against SPEC, with SPEC's defaults filled in."""
    checked = ArgumentSpecValidator(SPEC).validate(params or {})
    if checked.error_messages:
        module.fail_json(msg="%s: %s" % (name, "; ".join(checked.error_messages)))
    return checked.validated_parameters


def then(module, service, result, written=(), restart_files=()):
    """A writer module's `service` option (validated() before the module wrote anything), run once its files are
    written: `written`, the files it changed, count as pending (a preview predicts from them); `restart_files` are
    added to the option's. Merges into the module's `result`: `changed`, the facts, a diff (a list, the module's
    first), and what service_apply would return, under `service`."""
    service = dict(service, pending_files=list(service["pending_files"]) + list(written),
                   restart_files=list(service["restart_files"]) + list(restart_files))
    applied = run(module, service)
    result.setdefault("ansible_facts", {}).update(applied.pop("ansible_facts", {}))
    if not result["ansible_facts"]:
        del result["ansible_facts"]
    if "diff" in applied:
        mine = result.get("diff")
        result["diff"] = ([mine] if isinstance(mine, dict) else mine or []) + applied.pop("diff")
    result["changed"] = result["changed"] or applied.pop("changed")
    result["service"] = applied
    return result


def run(module, params):
    """Do what service_apply's `params` ask on this host (check mode: say what it would do); returns the result,
    ansible_facts included, or fails through module.fail_json."""
    given = params["units"] + params["start"] + params["stop"] + params["quiet"] + params["package_started"]
    bad = [name for name in given if not logic.UNIT_NAME_RE.fullmatch(name)]
    bad += ["%s (start takes names, not patterns)" % name for name in params["start"] if logic.is_pattern(name)]
    if bad:
        module.fail_json(msg="service_apply: units holds names systemd does not accept: %s" % ", ".join(bad))

    # systemctl adds .service to a bare name; the patterns given to list-units must say it themselves.
    def suffixed(names):
        return [name if re.search(r"\.[a-z]+$", name) else name + ".service" for name in names]

    check = module.check_mode
    start = list(dict.fromkeys(suffixed(params["start"])))
    result = dict(changed=False, started=[], enabled=[], stopped=[], disabled=[], restarted=[], reloaded=[], reasons={},
                  daemon_reloaded=False, written=[])
    # Units the operator installs are looked at before anything changes.
    if params["missing_msg"] and start:
        for name, unit in zip(start, _show(module, start)):
            if unit.get("LoadState") != "loaded":
                module.fail_json(msg="service_apply: %s is %s: %s" % (name, unit.get("LoadState") or "not-found",
                                                                      params["missing_msg"]), **result)
    # The files first, every drop-in checked before one is written. systemd reads them at the daemon-reload below;
    # in check mode they count as pending for the units that read them.
    pending_files = list(params["pending_files"])
    _write(module, params, result)
    if result["written"]:
        pending_files.extend(result["written"])
    done = list(params["pending_done"])
    stopped_before = logic.stopped_earlier(done) if check else set()
    # Check mode: a unit a package install of the run would bring and start, described as it would then be.
    fresh = dict((name, logic.package_started(name)) for name in suffixed(params["package_started"])) if check else {}
    stop = []
    if params["stop"]:
        patterns = suffixed(params["stop"])
        loaded = _listed(module, patterns, "--all")
        stop = logic.stop_targets(patterns, loaded + list(fresh), _enabled_links(), keep=start)
    patterns = suffixed(params["units"])
    running = [name for name in (_listed(module, patterns, "--state=active") if patterns else [])
               if name not in start and name not in stop and name not in stopped_before]
    names = list(dict.fromkeys(stop + start + running))
    if result["written"] and not check:
        module.run_command(["systemctl", "daemon-reload"], check_rc=True)
        result["daemon_reloaded"] = True
    if not names:
        return result

    # By the name asked for: systemctl answers in that order, and with the unit's own name for an alias.
    shown = dict(zip(names, _show(module, names)))
    for name, unit in fresh.items():
        if name in shown and shown[name].get("LoadState") != "loaded":
            shown[name] = unit
    # A unit file written since systemd last read its units (or a unit it looked up before the file was
    # there) needs a daemon-reload before anything starts or restarts.
    if any(unit.get("NeedDaemonReload") == "yes" for unit in shown.values()) or any(
            shown[name].get("LoadState") != "loaded" for name in start if name in shown):
        needs = any(unit.get("NeedDaemonReload") == "yes" for unit in shown.values())
        if not check:
            if not result["daemon_reloaded"]:
                module.run_command(["systemctl", "daemon-reload"], check_rc=True)
            shown = dict(zip(names, _show(module, names)))
            needs = True
        result["daemon_reloaded"] = needs
        result["changed"] = result["changed"] or needs

    # Units that must not run go first: an instance that leaves may hold a port a starting one takes.
    verbs = {"stop": [], "disable": [], "reset-failed": []}
    for name in stop:
        for verb in logic.stop_actions(shown[name]):
            verbs[verb].append(name)
        if check and "%s %s" % (name, logic.STOPPED) not in done:
            done.append("%s %s" % (name, logic.STOPPED))
    result["stopped"], result["disabled"] = verbs["stop"], verbs["disable"]
    for name in verbs["stop"]:
        result["reasons"][name] = "must not run"
    for verb in ("stop", "disable", "reset-failed"):
        _systemctl(module, verb, verbs[verb], result)

    # Units that must run: a preview names the start of a unit systemd does not know yet, whose unit file an
    # earlier task would bring, and of a unit an earlier call would stop.
    starting, enabling = [], []
    for name in start:
        unit = shown.get(name, {"Id": name, "LoadState": "not-found"})
        if not check and unit.get("LoadState") != "loaded":
            module.fail_json(msg="service_apply: %s cannot start: systemd has no unit file for it (LoadState=%s)."
                             % (name, unit.get("LoadState") or "not-found"), **result)
        actions = logic.start_actions(unit, stopped_before=name in stopped_before)
        if "start" in actions:
            starting.append(name)
            result["reasons"][name] = logic.start_reason(unit, stopped_before=name in stopped_before)
        if "enable" in actions:
            enabling.append(name)
    result["started"], result["enabled"] = starting, enabling
    _systemctl(module, "enable", enabling, result)
    _systemctl(module, "start", starting, result)
    if result["stopped"] or result["disabled"] or starting or enabling:
        result["changed"] = True
    if starting and not check:
        shown.update(zip(starting, _show(module, starting)))

    # Then what runs on older files: the units that must run and were running, and the running units given.
    candidates = [name for name in start if name not in starting
                  and shown.get(name, {}).get("ActiveState") in logic.RUNNING_STATES] + running
    if not candidates and not (starting and not check):
        if check:
            result["ansible_facts"] = dict(fediops_pending_done=done)
        return result

    settings_file = params["settings"]["path"] if params["settings"] else None
    settings_now = None
    if settings_file:
        try:
            settings_now = logic.restart_settings(text_file.read_text(settings_file) or "", params["settings"]["format"])
        except text_file.TextFileError as exc:
            module.fail_json(msg="service_apply: %s" % exc)

    paths = set(params["restart_files"]) | set(params["reload_files"]) | ({settings_file} if settings_file else set())
    for name in candidates + ([] if check else starting):
        paths.update(logic.start_files(shown[name]))
    mtimes = {path: _mtime(path) for path in paths}

    if not check and not os.path.isdir(params["state_dir"]):
        os.makedirs(params["state_dir"], mode=0o700)

    def decision(unit):
        record = _read_record(os.path.join(params["state_dir"], logic.record_name(unit["Id"])))
        pending = [path for path in pending_files if "%s %s" % (unit["Id"], path) not in done]
        action, reason = logic.decide(unit, mtimes, params["restart_files"], params["reload_files"],
                                      settings_file, settings_now, record, pending if check else ())
        return record, pending, action, reason

    # Quiet first, all at once, the units about to restart that ask for it (Sidekiq's TSTP: no new job is
    # fetched while the others restart, and the running ones finish).
    if params["quiet"] and not check:
        due = [name for name in candidates if decision(shown[name])[2] == "restart"
               and any(fnmatch.fnmatchcase(name, pattern) for pattern in suffixed(params["quiet"]))]
        if due:
            module.run_command(["systemctl", "kill", "--signal=TSTP", "--kill-whom=main", "--"] + due, check_rc=True)

    acted = False
    for name in candidates + ([] if check else starting):
        unit = shown[name]
        # A restart propagates (PartOf=, as Mastodon's mastodon-streaming.service groups its instances):
        # after one action, look at the next unit afresh.
        if acted:
            unit = _show(module, [unit["Id"]])[0]
        record, pending, action, reason = decision(unit)
        if name in starting:
            action = None  # it started just now, on the files as they are
        if check and action:
            done.extend("%s %s" % (unit["Id"], path) for path in pending)
        if action:
            result["changed"] = True
            result["restarted" if action == "restart" else "reloaded"].append(unit["Id"])
            result["reasons"][unit["Id"]] = reason
        if check:
            continue
        if action:
            module.run_command(["systemctl", action, unit["Id"]], check_rc=True)
            unit = _show(module, [unit["Id"]])[0]
            acted = True
        started = logic.parse_timestamp(unit.get("ActiveEnterTimestamp"))
        files = logic.present_files(unit, mtimes)
        valid = bool(record) and record.get("started") == started
        if action or not valid or record.get("files") != files:
            new = dict(started=started, applied=time.time() if action else record.get("applied", started) if valid else started,
                       settings=settings_now or {}, files=files)
            text_file.write_atomically(os.path.join(params["state_dir"], logic.record_name(unit["Id"])),
                                       json.dumps(new, sort_keys=True) + "\n", 0o600, 0, 0)
    if check:
        result["ansible_facts"] = dict(fediops_pending_done=done)
    return result
