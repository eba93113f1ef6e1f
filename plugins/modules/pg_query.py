#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_query
short_description: Run one SQL statement through psql, with values passed as parameters
description:
  - The collection's one way to talk SQL to PostgreSQL. Values in O(params) and O(secret) never enter the SQL
    text, argv, C(ps) or the journal; the query names them as V(:'name') (a quoted literal) or V(:"name") (a quoted
    identifier), which psql quotes itself.
  - Uses psql rather than a Python driver, so a preview (C(--check)) can read PostgreSQL on a host where nothing
    has been installed yet.
  - A read (O(write=false)) runs in a read-only transaction, in check mode too, and never reports a change. A
    write reports a change, and is not run in check mode.
version_added: 0.1.0
options:
  query:
    description: One SQL statement. A result of several rows and columns is returned as RV(rows).
    type: str
    required: true
  params:
    description: Values the query names as V(:'name') or V(:"name"). Names are letters, digits and V(_), with a lower-case letter.
    type: dict
    default: {}
  secret:
    description: One more value, named V(secret) in the query, that is never logged (a password or its secret).
    type: str
  write:
    description: The statement changes something. Without it, a statement that writes fails.
    type: bool
    default: false
  db:
    description: The database to connect to.
    type: str
    default: postgres
  port:
    description: PostgreSQL's port (also on the unix socket).
    type: int
    default: 5432
  host:
    description: Connect over TCP to this address instead of the unix socket.
    type: str
  user:
    description: The database role to log in as; by default the name of O(os_user).
    type: str
  os_user:
    description: The system user psql runs as (peer authentication on the unix socket). Empty runs it as the module's user.
    type: str
    default: postgres
  password:
    description: Password for O(user), through C(PGPASSWORD) in the module's own environment. Never logged.
    type: str
  passfile:
    description: A C(.pgpass) file for O(user), readable by O(os_user).
    type: path
  on_error:
    description:
      - V(fail) fails the task when psql cannot connect or the statement fails.
      - V(return) reports it in RV(ok) and RV(error) instead, for a caller to whom "no" is an answer (a login check,
        a server that may be down).
    type: str
    choices: [fail, return]
    default: fail
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Reads run; writes are reported as changes and not run.
  diff_mode:
    details: Not supported.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Read a role's stored secret
  fediops.mastodon.pg_query:
    query: "SELECT rolpassword FROM pg_authid WHERE rolname = :'role'"
    params: {role: mastodon}
  register: stored
  no_log: true

- name: Set the role's password to a SCRAM secret
  fediops.mastodon.pg_query:
    query: ALTER ROLE :"role" PASSWORD :'secret'
    params: {role: mastodon}
    secret: "{{ scram_secret }}"
    write: true
"""

RETURN = r"""
rows:
  description: The rows of the result, each a list of strings (NULL is the empty string). Empty for a skipped write.
  returned: always
  type: list
  elements: list
value:
  description: The first column of the first row, or null without a row.
  returned: always
  type: str
ok:
  description: Whether psql connected and the statement succeeded (false only with O(on_error=return)).
  returned: always
  type: bool
error:
  description: psql's message when RV(ok) is false.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediops.mastodon.plugins.module_utils.pg_query import (
    QueryError, argv, conninfo, parse_rows, script)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            query=dict(type="str", required=True),
            params=dict(type="dict", default={}),
            secret=dict(type="str", no_log=True),
            write=dict(type="bool", default=False),
            db=dict(type="str", default="postgres"),
            port=dict(type="int", default=5432),
            host=dict(type="str"),
            user=dict(type="str"),
            os_user=dict(type="str", default="postgres"),
            password=dict(type="str", no_log=True),
            passfile=dict(type="path"),
            on_error=dict(type="str", choices=["fail", "return"], default="fail"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    params = dict(p["params"])
    if p["secret"] is not None:
        params["secret"] = p["secret"]
    try:
        stdin = script(p["query"], params, read_only=not p["write"])
    except QueryError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=p["write"], rows=[], value=None, ok=True, error="")
    if p["write"] and module.check_mode:
        module.exit_json(**result)
    environ = {"PGPASSWORD": p["password"]} if p["password"] else {}
    if p["passfile"]:
        environ["PGPASSFILE"] = p["passfile"]
    # PGPASSWORD and PGPASSFILE reach psql through runuser, which keeps the environment.
    cmd = argv(module.get_bin_path("psql", required=True), conninfo(p["db"], p["port"], p["host"], p["user"]),
               p["os_user"] or None, terse=p["secret"] is not None)
    rc, out, err = module.run_command(cmd, data=stdin, binary_data=True, environ_update=environ, check_rc=False,
                                      cwd="/")
    if rc != 0:
        message = err.strip() or "psql exited with %d" % rc
        if p["on_error"] == "fail":
            module.fail_json(msg=message, changed=False, rows=[], value=None, ok=False, error=message)
        result.update(changed=False, ok=False, error=message)
        module.exit_json(**result)
    rows = parse_rows(out)
    result.update(rows=rows, value=rows[0][0] if rows else None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
