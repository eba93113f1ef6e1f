#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: redis_instance_config
short_description: Write an extra Redis (or Valkey) instance's config files, for Mastodon's cache or Sidekiq, and change what can change live
description:
  - Renders the instance's config file and its password file from the settings, compares them with the files
    there now, and, when the instance runs and every changed setting can change live, applies the changes to the
    running server with C(CONFIG SET) so that the instance keeps its data. Then writes the files, and makes the
    instance's own data directory (mode C(0750), the server's user's) when it is missing.
  - Returns RV(restart_required) when a changed setting applies only at start, as community.postgresql's
    C(postgresql_set) does. The restart itself is M(fediops.mastodon.service_apply)'s, from the settings the
    instance started with; with O(service), in the same call (a preview then names the restart the change needs).
  - The password reaches redis-cli only through C(REDISCLI_AUTH) in the module's own environment, and its file
    is never shown in a diff.
  - This module was called C(fediops.mastodon.redis_cache_config), a name that still works (C(meta/runtime.yml)).
version_added: 0.1.0
options:
  purpose:
    description:
      - V(cache) writes no snapshot and no append-only file (everything in a cache can be lost).
      - V(sidekiq) is Sidekiq's own Redis. It keeps snapshots with Redis's default rules and an append-only file.
        Its eviction policy must be C(noeviction), which is its default; the module does not check it, the
        C(fediops.mastodon.redis_instance_problems) filter does.
    type: str
    choices: [cache, sidekiq]
    default: cache
  managed_by:
    description:
      - Who manages the instance, named in the first line of both files, for example the role that runs it
        (V(fediops.mastodon.sidekiq_redis)).
      - 'Up to 100 letters, digits, spaces and C(_ . : / -).'
    type: str
    default: fediops.mastodon.redis_instance_config
  server:
    description: V(redis) or V(valkey).
    type: str
    choices: [redis, valkey]
    default: redis
  instance_name:
    description: The instance's name (C(redis-server@NAME.service)).
    type: str
    default: cache
  bind:
    description: Addresses to listen on.
    type: list
    elements: str
    default: [127.0.0.1, "::1"]
  port:
    description: Port to listen on.
    type: int
    default: 6380
  maxmemory:
    description: The memory limit, in Redis's units (V(256mb)).
    type: str
    required: true
  maxmemory_policy:
    description: The eviction policy; without one, the purpose's own (C(allkeys-lru) for V(cache), C(noeviction) for V(sidekiq)).
    type: str
  settings:
    description: More settings, name to value.
    type: dict
    default: {}
  password:
    description: The instance's C(requirepass); empty for none. Never logged.
    type: str
    default: ""
  package:
    description:
      - The Debian package that brings the server. When it is not installed, the module does nothing and returns
        RV(installed) false, so that the package is installed (and its default instance turned off) first and the
        module runs again; a run where it is installed needs no package task at all.
    type: str
    version_added: 0.3.0
extends_documentation_fragment:
  - fediops.mastodon.attributes
  - fediops.mastodon.service
attributes:
  check_mode:
    details: Reads the files and the running settings (C(CONFIG GET)) and reports what would change.
  diff_mode:
    support: full
    details: The config file's diff; never the password file's.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Write the cache's config and change settings live with CONFIG SET
  fediops.mastodon.redis_instance_config:
    port: 6380
    maxmemory: 256mb
    password: "{{ redis_cache_password }}"
  register: cache_config

- name: Sidekiq's own Redis, with snapshots, an append-only file and noeviction
  fediops.mastodon.redis_instance_config:
    purpose: sidekiq
    instance_name: sidekiq
    port: 6381
    maxmemory: "0"
    managed_by: my playbook
"""

RETURN = r"""
differ:
  description: Names of the settings whose value in the files changes.
  returned: always
  type: list
  elements: str
live:
  description: Names of the settings changed on the running server with C(CONFIG SET) (or that would be, in check mode).
  returned: always
  type: list
  elements: str
restart_required:
  description: A changed setting applies only when the instance starts.
  returned: always
  type: bool
installed:
  description: Whether O(package) is installed (always true without O(package)); when false, nothing was done.
  returned: always
  type: bool
  version_added: 0.3.0
service:
  description: What O(service) did, as M(fediops.mastodon.service_apply) returns it (C(started), C(restarted), ...).
  returned: when O(service) is given and the server is installed
  type: dict
  version_added: 0.3.0
ansible_facts:
  description:
    - C(fediops_pending_done) in check mode with O(service), as M(fediops.mastodon.service_apply) returns it.
    - C(fediops_redis_<purpose>), the instance's C(maxmemory) and C(maxmemory-policy) as the running server reports
      them once the module is done (in check mode, as they are now), read by the same C(CONFIG GET) that compares
      the live settings. Empty when the module did not read the server (it did not run, or a restart applies the
      change). Never the password.
  returned: always
  type: dict
  sample: {fediops_redis_cache: {maxmemory: "268435456", maxmemory-policy: allkeys-lru}}
  version_added: 0.3.0
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediops.mastodon.plugins.module_utils.redis_instance import (
    RedisInstanceError, admin_host, directives, parse_conf, plan, render_conf, render_secret_conf, secret_directives,
    server_paths, sync_live)
from ansible_collections.fediops.mastodon.plugins.module_utils import service_run
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import (
    TextFileError, group_id, read_text, user_id, write_atomically)

MODE = "0640"
DIR_MODE = "0750"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            purpose=dict(type="str", choices=["cache", "sidekiq"], default="cache"),
            managed_by=dict(type="str", default="fediops.mastodon.redis_instance_config"),
            server=dict(type="str", choices=["redis", "valkey"], default="redis"),
            instance_name=dict(type="str", default="cache"),
            bind=dict(type="list", elements="str", default=["127.0.0.1", "::1"]),
            port=dict(type="int", default=6380),
            maxmemory=dict(type="str", required=True),
            maxmemory_policy=dict(type="str"),
            settings=dict(type="dict", default={}),
            password=dict(type="str", default="", no_log=True),
            package=dict(type="str"),
            service=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    # A wrong `service` option stops the call before anything is read or written.
    service = service_run.validated(module, p["service"]) if p["service"] is not None else None
    if p["package"]:
        _rc, status, _err = module.run_command(["dpkg-query", "-W", "-f=${db:Status-Status}", p["package"]])
        if status.strip() != "installed":
            module.exit_json(changed=False, differ=[], live=[], restart_required=False, installed=False,
                             ansible_facts={"fediops_redis_%s" % p["purpose"]: {}})
    paths = server_paths(p["server"], p["instance_name"])
    main_pairs = directives(p)
    secret_pairs = secret_directives(p["password"])
    try:
        wanted = {paths["conf"]: render_conf(main_pairs, p["server"], p["instance_name"], p["purpose"], p["managed_by"]),
                  paths["secret_conf"]: render_secret_conf(secret_pairs, p["managed_by"])}
    except RedisInstanceError as exc:
        module.fail_json(msg=str(exc))
    try:
        now = dict((path, read_text(path)) for path in wanted)
    except TextFileError as exc:
        module.fail_json(msg=str(exc))
    current = parse_conf([now[paths["conf"]], now[paths["secret_conf"]]])
    decided = plan(current, main_pairs, secret_pairs)
    # Always returned, empty when the server was not read, so that no fact of an earlier run (a fact cache) stays.
    seen = {}
    result = dict(changed=False, differ=decided["differ"], live=[], restart_required=bool(decided["restart"]), installed=True,
                  ansible_facts={"fediops_redis_%s" % p["purpose"]: seen})

    # Live changes only to an instance that runs on this file, and only when no change needs a start:
    # then the restart applies everything at once. The running server still has the old file's password.
    rc, state, _err = module.run_command(["systemctl", "show", "--property=ActiveState", "--value", paths["unit"]])
    if now[paths["conf"]] and state.strip() == "active" and not decided["restart"]:
        cli = module.get_bin_path(paths["cli"], required=True)
        environ = {"REDISCLI_AUTH": current["requirepass"]} if current.get("requirepass") else {}

        def run(args, data):
            return module.run_command(args, data=data, binary_data=False, environ_update=environ, check_rc=False)

        try:
            result["live"] = sync_live(run, [cli, "-h", admin_host(p["bind"]), "-p", str(p["port"])],
                                       main_pairs, secret_pairs, module.check_mode, seen)
        except RedisInstanceError as exc:
            module.fail_json(msg=str(exc), **result)

    if module._diff:
        result["diff"] = dict(before=now[paths["conf"]], after=wanted[paths["conf"]],
                              before_header=paths["conf"], after_header=paths["conf"])
    uid, gid = user_id(paths["user"]), group_id(paths["user"])
    # The instance's own data directory (dump.rdb, nodes), the server's user's alone. A preview on a host
    # without the server yet has no such user: it only says the directory would be made.
    if not os.path.isdir(paths["dir"]):
        result["changed"] = True
        if not module.check_mode:
            try:
                os.makedirs(paths["dir"], mode=int(DIR_MODE, 8))
            except OSError as exc:
                module.fail_json(msg="cannot create %s: %s" % (paths["dir"], exc), **result)
    if os.path.isdir(paths["dir"]) and uid is not None:
        dir_args = module.load_file_common_arguments(dict(path=paths["dir"], owner=paths["user"], group=paths["user"],
                                                          mode=DIR_MODE))
        result["changed"] = module.set_fs_attributes_if_different(dir_args, result["changed"])
    for path, text in wanted.items():
        if text != now[path]:
            result["changed"] = True
            if not module.check_mode:
                try:
                    write_atomically(path, text, mode=int(MODE, 8), uid=uid, gid=gid)
                except (OSError, TextFileError) as exc:
                    module.fail_json(msg="cannot write %s: %s" % (path, exc), **result)
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(dict(path=path, owner=paths["user"], group=paths["user"],
                                                               mode=MODE))
            result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    result["changed"] = result["changed"] or bool(result["live"])
    if service is not None:
        # A preview wrote nothing: a changed setting that needs a start names the restart.
        service_run.then(module, service, result, written=[paths["conf"]] if result["changed"] else [],
                         restart_files=[paths["conf"]] if module.check_mode and result["restart_required"] else [])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
