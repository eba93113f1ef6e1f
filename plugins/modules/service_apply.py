#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_apply
short_description: Restart or reload running systemd units whose configuration changed after they started
description:
  - The one way this collection applies configuration to running services. It decides from the running
    state, not from what changed in this run, so a run interrupted between writing a file and restarting
    the service is completed by the next run.
  - A running unit restarts when its unit file, a drop-in, an C(EnvironmentFile=) or one of O(restart_files)
    is newer than the time the unit became active. C(daemon-reload) runs first, once, when systemd says a
    unit file changed.
  - It reloads when one of O(reload_files) is newer than the later of that time and the last reload this
    module did (recorded under O(state_dir)).
  - With O(settings), a changed settings file restarts the unit when a setting the server applies only at
    start differs from the one recorded at the last restart or reload. Otherwise it is reloaded when it is
    also one of O(reload_files) (pgbouncer.ini), and left alone when not (Redis, whose other settings the
    caller sets live).
  - Units that do not run are left alone; roles start them.
version_added: 0.1.0
options:
  units:
    description: Unit names or C(systemctl) patterns such as C(mastodon-sidekiq*.service).
    type: list
    elements: str
    required: true
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
        reported, so that it is reported once. Pass C(ansible_facts.fediops_pending_done), which this module returns.
    type: list
    elements: str
    default: []
  state_dir:
    description: Where the start time and restart-only settings applied last are recorded, readable by root only.
    type: path
    default: /run/fediops/service_apply
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Says what it would restart or reload, and does nothing.
  diff_mode:
    details: Nothing to show; the reasons say which file changed.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
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
daemon_reloaded:
  description: Whether systemd re-read its unit files first.
  returned: always
  type: bool
ansible_facts:
  description: In check mode, C(fediops_pending_done) - O(pending_done) and the pairs this task reported.
  returned: check mode
  type: dict
"""

import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import service_apply as logic
from ansible_collections.fediops.mastodon.plugins.module_utils import text_file


def _show(module, names):
    argv = ["systemctl", "show", "--timestamp=us+utc"] + ["--property=" + p for p in logic.SHOW_PROPERTIES] + names
    out = module.run_command(argv, check_rc=True)[1]
    return logic.parse_show(out)


def _running(module, patterns):
    out = module.run_command(["systemctl", "list-units", "--plain", "--no-legend", "--full",
                              "--state=active", "--"] + patterns, check_rc=True)[1]
    return sorted({line.split()[0] for line in out.splitlines() if line.strip()})


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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            units=dict(type="list", elements="str", required=True),
            restart_files=dict(type="list", elements="path", default=[]),
            reload_files=dict(type="list", elements="path", default=[]),
            settings=dict(type="dict", options=dict(
                path=dict(type="path", required=True),
                format=dict(type="str", required=True, choices=list(logic.SETTINGS_FORMATS)),
            )),
            pending_files=dict(type="list", elements="path", default=[]),
            pending_done=dict(type="list", elements="str", default=[]),
            state_dir=dict(type="path", default="/run/fediops/service_apply"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    bad = [name for name in params["units"] if not logic.UNIT_NAME_RE.fullmatch(name)]
    if bad:
        module.fail_json(msg="service_apply: units holds names systemd does not accept: %s" % ", ".join(bad))
    # systemctl adds .service to a bare name; the patterns given to list-units must say it themselves.
    patterns = [name if re.search(r"\.[a-z]+$", name) else name + ".service" for name in params["units"]]
    result = dict(changed=False, restarted=[], reloaded=[], reasons={}, daemon_reloaded=False)
    names = _running(module, patterns) if patterns else []
    if not names:
        module.exit_json(**result)

    units = _show(module, names)
    if any(unit.get("NeedDaemonReload") == "yes" for unit in units):
        result["daemon_reloaded"] = result["changed"] = True
        if not module.check_mode:
            module.run_command(["systemctl", "daemon-reload"], check_rc=True)
            units = _show(module, names)

    settings_file = params["settings"]["path"] if params["settings"] else None
    settings_now = None
    if settings_file:
        try:
            settings_now = logic.restart_settings(text_file.read_text(settings_file) or "", params["settings"]["format"])
        except text_file.TextFileError as exc:
            module.fail_json(msg="service_apply: %s" % exc)

    paths = set(params["restart_files"]) | set(params["reload_files"]) | ({settings_file} if settings_file else set())
    for unit in units:
        paths.update(logic.start_files(unit))
    mtimes = {path: _mtime(path) for path in paths}

    if not module.check_mode and not os.path.isdir(params["state_dir"]):
        os.makedirs(params["state_dir"], mode=0o700)
    acted = False
    done = list(params["pending_done"])
    for unit in units:
        # A restart propagates (PartOf=, as Mastodon's mastodon-streaming.service groups its instances):
        # after one action, look at the next unit afresh.
        if acted:
            unit = _show(module, [unit["Id"]])[0]
        record_path = os.path.join(params["state_dir"], logic.record_name(unit["Id"]))
        record = _read_record(record_path)
        pending = [path for path in params["pending_files"] if "%s %s" % (unit["Id"], path) not in done]
        action, reason = logic.decide(unit, mtimes, params["restart_files"], params["reload_files"],
                                      settings_file, settings_now, record, pending if module.check_mode else ())
        if module.check_mode and action:
            done.extend("%s %s" % (unit["Id"], path) for path in pending)
        if action:
            result["changed"] = True
            result["restarted" if action == "restart" else "reloaded"].append(unit["Id"])
            result["reasons"][unit["Id"]] = reason
        if module.check_mode:
            result["ansible_facts"] = dict(fediops_pending_done=done)
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
            text_file.write_atomically(record_path, json.dumps(new, sort_keys=True) + "\n", 0o600, 0, 0)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
