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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import service_run


def main():
    module = AnsibleModule(argument_spec=service_run.SPEC, supports_check_mode=True)
    module.exit_json(**service_run.run(module, module.params))


if __name__ == "__main__":
    main()
