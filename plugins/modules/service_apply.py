#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_apply
short_description: Start, stop, restart or reload systemd units so that they run on their current configuration
description:
  - The one way this collection starts, stops and applies configuration to services. It decides from the running
    state, not from what changed in this run, so a run interrupted between writing a file and restarting
    the service is completed by the next run.
  - In this order - units of O(stop) are stopped, disabled and their failed state cleared; units of O(start) are
    enabled and started; then running units are restarted or reloaded as below. C(daemon-reload) runs first, once,
    when systemd says a unit file changed or a unit to start is not loaded yet.
  - A running unit restarts when its unit file, a drop-in, an C(EnvironmentFile=) or one of O(restart_files)
    is newer than the time the unit became active. A unit this call started is current.
  - It reloads when one of O(reload_files) is newer than the later of that time and the last reload this
    module did (recorded under O(state_dir)).
  - With O(settings), a changed settings file restarts the unit when a setting the server applies only at
    start differs from the one recorded at the last restart or reload. Otherwise it is reloaded when it is
    also one of O(reload_files) (pgbouncer.ini), and left alone when not (Redis, whose other settings the
    caller sets live).
  - Units of O(units) that do not run are left alone.
  - A preview (check mode) names every start, stop, restart and reload the real run makes, also for units whose
    unit file or package an earlier task of the run would bring (O(pending_files), O(package_started)), and for
    units an earlier call of the run would stop (O(pending_done)).
version_added: 0.1.0
options:
  units:
    description: Unit names or C(systemctl) patterns such as C(mastodon-sidekiq*.service), restarted or reloaded when they
      run on older files. Units of O(start) are always looked at; they need not be repeated here.
    type: list
    elements: str
    default: []
  start:
    description:
      - Unit names (no patterns) that must run and start at boot - enabled when disabled, started when not running.
        A unit that runs is restarted or reloaded like those of O(units).
      - Started together, with one C(systemctl start); a unit systemd has no file for fails the task.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  missing_msg:
    description:
      - When set, every unit of O(start) must be installed before this call, also in check mode, as a unit the operator
        installs (Mastodon's own C(mastodon-web.service)) must. A unit systemd has no file for fails the task with
        this message after the unit's name and load state, before any file is written.
    type: str
    version_added: 0.3.0
  stop:
    description:
      - Unit names or patterns (C(mastodon-streaming@*.service)) that must neither run nor start at boot - stopped,
        disabled, and their failed state cleared. Units of O(start) are kept.
      - A pattern matches the units systemd has loaded and those enabled through a link in
        C(/etc/systemd/system/*.wants/) or C(*.requires/).
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  quiet:
    description: Patterns of units whose main process gets C(SIGTSTP) first, all at once, when they are about to
      restart (Sidekiq's quiet - it fetches no new job while the others restart, and finishes the ones it runs).
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  restart_files:
    description: Files read only at start, besides each unit's own unit file, drop-ins and environment files.
    type: list
    elements: path
    default: []
  reload_files:
    description: Files the service re-reads on C(systemctl reload).
    type: list
    elements: path
    default: []
  settings:
    description: A configuration file holding settings of both kinds, and its format.
    type: dict
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      format:
        description: C(pgbouncer) (pgbouncer.ini) or C(redis) (redis.conf, where every setting Redis cannot
          C(CONFIG SET) counts as applied at start).
        type: str
        required: true
        choices: [pgbouncer, redis]
  pending_files:
    description:
      - Check mode only - files that earlier tasks of this run would have written (they reported a change but wrote
        nothing). They count as changed, so the prediction names the restarts and reloads the real run makes. A new
        unit file or drop-in of a unit counts for it too. Ignored outside check mode, where the files' times count.
    type: list
    elements: path
    default: []
  pending_done:
    description:
      - Check mode only - C(UNIT PATH) pairs whose predicted restart or reload an earlier task of this run already
        reported, so that it is reported once, and C(UNIT stopped) for units an earlier call would stop, which are then
        not restarted but started again. Pass C(ansible_facts.fediops_pending_done), which this module returns.
    type: list
    elements: str
    default: []
  package_started:
    description:
      - Check mode only - units of O(start) that a package install earlier in the run would bring and start (Debian
        starts a service when its package is installed). They are predicted as running from before the run, so the
        preview names the restart or reload the real run then makes, not a start.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  files:
    description:
      - Unit files this call writes before it acts, root's, atomically, in a folder that exists. A file it writes
        counts as changed for the units that read it, so that writing a unit and running it is one module call.
      - Never a secret - every local user reads unit files, and the diff shows the text.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      content:
        description: Its whole text.
        type: str
        required: true
      mode:
        description: Its octal mode.
        type: str
        default: "0644"
      owner:
        description: Its owner.
        type: str
        default: root
      group:
        description: Its group.
        type: str
        default: root
      validate:
        description:
          - A command that must accept the new text before the file is replaced, C(%s) standing for a temporary copy
            (as C(ansible.builtin.copy)'s). Run before any file of the call is written; a refusal fails the task with
            the command's output and RV(refused), and writes nothing. Not run in check mode.
        type: str
  dropins:
    description:
      - Drop-ins this call writes or removes before it acts, as M(fediops.mastodon.systemd_dropin) does (the same
        writer). Every one is checked before any file is written.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
    suboptions:
      unit:
        description: The unit, with its suffix.
        type: str
        required: true
      name:
        description: The drop-in's file name without V(.conf).
        type: str
        default: fediops
      settings:
        description: Sections and settings, as M(fediops.mastodon.systemd_dropin)'s O(fediops.mastodon.systemd_dropin#module:settings).
        type: dict
        default: {}
      state:
        description: Whether the drop-in should exist.
        type: str
        choices: [present, absent]
        default: present
  state_dir:
    description: Where the start time and restart-only settings applied last are recorded, readable by root only.
    type: path
    default: /run/fediops/service_apply
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Says what it would start, stop, restart or reload, and does nothing.
  diff_mode:
    support: full
    details: The text of each file of O(files) and O(dropins) before and after; the reasons say which file changed.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Run the Sidekiq processes of the plan, on their current files, and stop the ones that left
  fediops.mastodon.service_apply:
    start: [mastodon-sidekiq@default.service, mastodon-sidekiq@push.service]
    stop: [mastodon-sidekiq@pull.service]

- name: Run streaming on ports 4000 and 4001 only, grouped by mastodon-streaming.service
  fediops.mastodon.service_apply:
    start: [mastodon-streaming@4000.service, mastodon-streaming@4001.service, mastodon-streaming.service]
    stop: ["mastodon-streaming@*.service"]

- name: Apply PgBouncer's configuration, reloading unless a setting needs a restart
  fediops.mastodon.service_apply:
    units: [pgbouncer.service]
    reload_files: [/etc/pgbouncer/pgbouncer.ini, /etc/pgbouncer/userlist.txt]
    settings:
      path: /etc/pgbouncer/pgbouncer.ini
      format: pgbouncer

- name: Restart every Mastodon unit that runs on an older .env.production
  fediops.mastodon.service_apply:
    units: [mastodon-web.service, "mastodon-sidekiq*.service", "mastodon-streaming*.service"]
    restart_files: [/home/mastodon/live/.env.production]
"""

RETURN = r"""
started:
  description: Units started (or that would be, in check mode).
  returned: always
  type: list
  elements: str
enabled:
  description: Units enabled at boot (or that would be).
  returned: always
  type: list
  elements: str
stopped:
  description: Units stopped (or that would be).
  returned: always
  type: list
  elements: str
disabled:
  description: Units disabled at boot (or that would be).
  returned: always
  type: list
  elements: str
restarted:
  description: Units restarted (or that would be, in check mode).
  returned: always
  type: list
  elements: str
reloaded:
  description: Units reloaded (or that would be).
  returned: always
  type: list
  elements: str
reasons:
  description: Why, per unit; file names only, never a value.
  returned: always
  type: dict
refused:
  description: On failure, the file of O(files) whose O(files[].validate) refused its new text.
  returned: when a check refused a file
  type: str
  version_added: 0.3.0
written:
  description: The files of O(files) and O(dropins) whose text changed (or would), and the drop-ins removed.
  returned: always
  type: list
  elements: str
  version_added: 0.3.0
daemon_reloaded:
  description: Whether systemd re-read its unit files first.
  returned: always
  type: bool
ansible_facts:
  description: In check mode, C(fediops_pending_done) - O(pending_done), the pairs this task reported and the units it
    would stop.
  returned: check mode
  type: dict
"""

import fnmatch
import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
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
        ),
        supports_check_mode=True,
    )
    params = module.params
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
        module.exit_json(**result)

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
        module.exit_json(**result)

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
    module.exit_json(**result)


if __name__ == "__main__":
    main()
