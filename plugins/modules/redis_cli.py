#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cli
short_description: Run redis-cli (or valkey-cli) with a password that never reaches argv, the journal or -vvv output
description:
  - Runs the CLI with O(args), feeding O(stdin) when given. The password reaches the CLI only through
    C(REDISCLI_AUTH) in the module process's own environment.
  - "Ansible's C(environment:) keyword would put the password on the command line that starts the module:
    visible in C(ps) to every local user and in C(-vvv) output. A C(no_log) option avoids both."
  - Never changes anything by itself; callers decide C(changed_when) from what they sent.
version_added: 0.1.0
options:
  cli:
    description: The client to run, C(redis-cli) or C(valkey-cli), or its path.
    type: str
    default: redis-cli
  host:
    description: Address of the server.
    type: str
    default: 127.0.0.1
  port:
    description: Port of the server.
    type: int
    default: 6379
  password:
    description: The server's password (C(requirepass)); empty or unset connects without one. Never logged.
    type: str
  args:
    description: The command and its arguments, for example C([CONFIG, GET, maxmemory]). Empty reads commands from O(stdin).
    type: list
    elements: str
    default: []
  stdin:
    description: Commands, one per line, when O(args) is empty. Kept out of every log, as it may set a password.
    type: str
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Runs in check mode too; send only reading commands then.
  diff_mode:
    details: Not supported; nothing is changed.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Read the cache's memory settings
  fediops.mastodon.redis_cli:
    port: 6380
    password: "{{ redis_cache_password }}"
    args: [CONFIG, GET, "max*"]
  register: cache_settings
  changed_when: false
"""

RETURN = r"""
rc:
  description: Exit status of the CLI.
  returned: always
  type: int
stdout:
  description: Its output.
  returned: always
  type: str
stdout_lines:
  description: Its output, line by line.
  returned: always
  type: list
  elements: str
stderr:
  description: Its error output.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cli=dict(type="str", default="redis-cli"),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=6379),
            password=dict(type="str", no_log=True),
            args=dict(type="list", elements="str", default=[]),
            stdin=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["args"] and params["stdin"] is None:
        module.fail_json(msg="give args or commands in stdin")
    cli = module.get_bin_path(params["cli"], required=True)
    environ = {"REDISCLI_AUTH": params["password"]} if params["password"] else {}
    argv = [cli, "-h", params["host"], "-p", str(params["port"])] + params["args"]
    rc, out, err = module.run_command(argv, data=params["stdin"], binary_data=False, environ_update=environ,
                                      check_rc=False)
    result = dict(changed=False, rc=rc, stdout=out, stdout_lines=out.splitlines(), stderr=err)
    if rc != 0:
        module.fail_json(msg="%s exited with %d: %s" % (params["cli"], rc, err.strip() or out.strip()), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
