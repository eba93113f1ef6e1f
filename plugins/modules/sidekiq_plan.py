#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sidekiq_plan
short_description: Check a plan of Sidekiq processes split by queue and compute their units
version_added: 0.1.0
description:
  - Checks a list of Mastodon Sidekiq processes, each serving some queues, and returns what their systemd
    units need. It changes nothing, so it runs before any task that does, and behaves the same in check mode.
  - The checks, all reported at once, each naming the numbers and what to change. C(scheduler) is served by exactly
    one process. Every queue of the given Mastodon version is served by some process. Queue names are Mastodon's,
    unless O(allow_unknown_queues). Threads are at least 1. C(db_pool) is not below threads.
  - C(DB_POOL) of each process comes from M(fediops.mastodon.connection_plan) rules, at least its threads.
  - Environment values that look like secrets (by their names, C(*PASS*), C(*SECRET*), C(*_KEY*), C(*TOKEN*),
    C(*PRIVATE*), C(*CREDENTIAL*), or by the value, such as a URL with a password) are refused, and masked in the
    output; the rule is C(is_secret) in C(plugins/module_utils/env_file.py).
options:
  processes:
    description:
      - The Sidekiq processes. Each becomes C(<unit_prefix>@<name>.service).
      - When omitted, the guide's split for O(mastodon_version) is used (default, push, pull with ingress and fasp,
        mailers with scheduler).
    type: list
    elements: dict
    suboptions:
      name:
        description: Process name, lower-case letters, digits, C(_) and C(-).
        type: str
        required: true
      queues:
        description: Queues as on Sidekiq's command line, C(name) or C(name,weight).
        type: list
        elements: str
      threads:
        description: Concurrency, C(sidekiq -c).
        type: int
      db_pool:
        description: C(DB_POOL); at least O(processes[].threads). Defaults to the threads.
        type: int
      state:
        description: V(absent) processes are returned in RV(absent) and take no part in the checks.
        type: str
        choices: [present, absent]
        default: present
      environment:
        description:
          - Extra environment of this process, strings or numbers without quotes, backslashes or line breaks.
          - C(DB_POOL) is not allowed here; it comes from O(processes[].db_pool).
        type: dict
        default: {}
  common_environment:
    description:
      - The environment every process gets (the template unit's), checked by the same rules as
        O(processes[].environment).
    type: dict
    default: {}
  mastodon_version:
    description: The Mastodon version the server runs; it decides which queues exist (C(fasp) from 4.4).
    type: str
    required: true
  allow_unknown_queues:
    description: Accept queue names Mastodon does not use (for an operator's own jobs).
    type: bool
    default: false
  bundle:
    description:
      - Absolute path of C(bundle) in the commands.
      - When omitted, the program of O(single_unit)'s C(ExecStart=) on the host, which must be a C(bundle);
        without that unit, C(/home/mastodon/.rbenv/shims/bundle) (Mastodon's install guide).
    type: path
  single_unit:
    description: The single Sidekiq unit whose C(ExecStart=) tells where C(bundle) is, when O(bundle) is omitted.
    type: str
    default: mastodon-sidekiq.service
  unit_prefix:
    description: Template unit name without C(@.service).
    type: str
    default: mastodon-sidekiq
  scheduler:
    description:
      - Whether this host runs Mastodon's C(scheduler) queue. Exactly one host of a server does; with C(false) no
        process may serve it, and it is not missing.
    type: bool
    default: true
  dropin_name:
    description: The file name (without C(.conf)) of the drop-in the caller writes for each process; the processes
      holding one are returned in RV(existing).
    type: str
    default: sidekiq-queues
    version_added: 0.2.0
  shutdown_timeout:
    description:
      - Seconds Sidekiq waits for running jobs at shutdown (C(-t)), 1 to 3600. The unit's C(TimeoutStopSec) is
        this plus 5 (RV(stop_timeout)).
    type: int
    default: 25
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Can run in check mode; the module only computes (and reads the single unit and the drop-ins), so it behaves
      the same.
  diff_mode:
    details: Nothing changes, so there is no diff.
author:
  - fediops.mastodon contributors (@fediops)
"""

EXAMPLES = r"""
- name: Check the split before touching any unit
  fediops.mastodon.sidekiq_plan:
    mastodon_version: 4.4.0
    bundle: /usr/bin/bundle
    processes:
      - name: default
        queues: [default]
        threads: 10
      - name: federation
        queues: ["push,6", "ingress,4", pull, fasp]
        threads: 20
        db_pool: 25
      - name: mailers
        queues: ["mailers,2", scheduler]
        threads: 5
  register: sidekiq_plan

- name: The guide's default split for Mastodon 4.3
  fediops.mastodon.sidekiq_plan:
    mastodon_version: 4.3.2
"""

RETURN = r"""
shutdown_timeout:
  description: Sidekiq's C(-t) in every process's command.
  returned: success
  type: int
  sample: 25
stop_timeout:
  description: The units' C(TimeoutStopSec), C(-t) plus 5 seconds, so systemd never kills a process still finishing its jobs.
  returned: success
  type: int
  sample: 30
present:
  description: The processes to run, in plan order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Process name.
      type: str
      sample: push
    unit:
      description: The systemd instance.
      type: str
      sample: mastodon-sidekiq@push.service
    queues:
      description: Queues, normalized (C(name) or C(name,weight)).
      type: list
      elements: str
      sample: ["push"]
    threads:
      description: Concurrency.
      type: int
      sample: 10
    db_pool:
      description: C(DB_POOL), at least the threads.
      type: int
      sample: 10
    argv:
      description: The command, one argument per element.
      type: list
      elements: str
      sample: [/usr/bin/bundle, exec, sidekiq, -c, "10", -q, push]
    exec_start:
      description: The command as systemd's C(ExecStart=) takes it.
      type: str
      sample: /usr/bin/bundle exec sidekiq -c 10 -q push
    environment:
      description:
        - C(DB_POOL) and the process's own environment.
        - Secret-looking values are masked (C(********)) here, so callers must take them from their own input.
      type: dict
      sample: {DB_POOL: "10"}
    secret:
      description: Whether the environment holds a secret-looking value (callers then hide the drop-in's diff).
      type: bool
      sample: false
absent:
  description: Names of processes set to V(absent).
  returned: success
  type: list
  elements: str
  sample: [ingress]
bundle:
  description: The C(bundle) path used in the commands.
  returned: success
  type: str
  sample: /home/mastodon/.rbenv/shims/bundle
total_threads:
  description: Threads of all present processes, the client connections they open.
  returned: success
  type: int
  sample: 35
single:
  description: The state of O(single_unit) (C(LoadState), C(ActiveState), C(UnitFileState)); empty values without systemd.
  returned: success
  type: dict
  sample: {LoadState: loaded, ActiveState: inactive, UnitFileState: disabled}
single_actions:
  description: What retiring O(single_unit) takes (C(stop), C(disable), C(reset-failed)); empty once it is retired.
  returned: success
  type: list
  elements: str
  sample: [stop, disable]
existing:
  description: Names of the processes that hold a drop-in O(dropin_name) now (C(/etc/systemd/system/PREFIX@NAME.service.d/)).
  returned: success
  type: list
  elements: str
  sample: [default, push]
queue_processes:
  description: For each queue, the processes serving it.
  returned: success
  type: dict
  sample: {default: [default], push: [push], scheduler: [mailers]}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import is_secret
from ansible_collections.fediops.mastodon.plugins.module_utils.service_apply import stop_actions
from ansible_collections.fediops.mastodon.plugins.module_utils.sidekiq_plan import (
    SidekiqPlanError,
    build,
    bundle_from_execstart,
    default_processes,
)

RBENV_BUNDLE = "/home/mastodon/.rbenv/shims/bundle"


SINGLE_PROPERTIES = ("LoadState", "ActiveState", "UnitFileState")


def read_single(module):
    """The single Sidekiq unit as systemd sees it: ({property: value}, `systemctl show` text)."""
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return dict.fromkeys(SINGLE_PROPERTIES, ""), ""
    rc, out, _err = module.run_command([systemctl, "show", "--property=%s,ExecStart" % ",".join(SINGLE_PROPERTIES),
                                        "--", module.params["single_unit"]])
    if rc != 0:
        return dict.fromkeys(SINGLE_PROPERTIES, ""), ""
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return dict((key, found.get(key, "")) for key in SINGLE_PROPERTIES), out


def existing_processes(prefix, dropin_name, directory="/etc/systemd/system"):
    """Names of the processes whose PREFIX@NAME.service.d/ holds the caller's drop-in."""
    head, tail = prefix + "@", ".service.d"
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return sorted(entry[len(head):-len(tail)] for entry in entries
                  if entry.startswith(head) and entry.endswith(tail) and len(entry) > len(head) + len(tail)
                  and os.path.isfile(os.path.join(directory, entry, dropin_name + ".conf")))


def detect_bundle(module, single, out):
    """The bundle the single Sidekiq unit runs, so the split processes use the same Ruby."""
    if single.get("LoadState") != "loaded":
        return RBENV_BUNDLE
    path = bundle_from_execstart(out)
    if path is None:
        return RBENV_BUNDLE
    if path.rsplit("/", 1)[-1] != "bundle":
        module.fail_json(msg="%s runs %s, not bundle: set the bundle path (sidekiq_queues_bundle) explicitly."
                         % (module.params["single_unit"], path))
    return path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            processes=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                queues=dict(type="list", elements="str"),
                threads=dict(type="int"),
                db_pool=dict(type="int"),
                state=dict(type="str", choices=["present", "absent"], default="present"),
                environment=dict(type="dict", default={}),
            )),
            common_environment=dict(type="dict", default={}),
            mastodon_version=dict(type="str", required=True),
            allow_unknown_queues=dict(type="bool", default=False),
            bundle=dict(type="path"),
            single_unit=dict(type="str", default="mastodon-sidekiq.service"),
            unit_prefix=dict(type="str", default="mastodon-sidekiq"),
            scheduler=dict(type="bool", default=True),
            shutdown_timeout=dict(type="int", default=25),
            dropin_name=dict(type="str", default="sidekiq-queues"),
        ),
        supports_check_mode=True,
    )
    processes = module.params["processes"]
    single, single_show = read_single(module)
    bundle = module.params["bundle"] or detect_bundle(module, single, single_show)
    # Secret-looking environment values must never reach the output, whatever the caller's no_log says.
    for environment in [module.params["common_environment"]] + [p.get("environment") for p in processes or []]:
        for key, value in (environment or {}).items():
            if value is not None and str(value) and is_secret(str(key), value=value):
                module.no_log_values.add(str(value))
    if processes is None:
        try:
            processes = default_processes(module.params["mastodon_version"])
        except SidekiqPlanError as exc:
            module.fail_json(msg=str(exc), problems=exc.problems)
    # The argument spec fills unset suboptions with None; the plan treats a missing db_pool as "use threads".
    processes = [{k: v for k, v in proc.items() if v is not None or k in ("threads", "queues")} for proc in processes]
    try:
        result = build(processes, module.params["mastodon_version"], bundle,
                       allow_unknown_queues=module.params["allow_unknown_queues"],
                       unit_prefix=module.params["unit_prefix"],
                       common_environment=module.params["common_environment"],
                       scheduler=module.params["scheduler"],
                       shutdown_timeout=module.params["shutdown_timeout"])
    except SidekiqPlanError as exc:
        module.fail_json(msg="The Sidekiq plan cannot be used: " + str(exc), problems=exc.problems)
    for unit in result["present"]:
        unit.pop("secret_values")
    existing = existing_processes(module.params["unit_prefix"], module.params["dropin_name"])
    module.exit_json(changed=False, bundle=bundle, single=single, single_actions=stop_actions(single), existing=existing,
                     **result)


if __name__ == "__main__":
    main()
