#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_hba_block
short_description: Keep a named block of rules at the top of pg_hba.conf, checked by PostgreSQL before any reload
description:
  - Writes the block between C(# BEGIN fediops.mastodon NAME) and C(# END fediops.mastodon NAME), at the top of the
    file when it is new (PostgreSQL uses the first matching line). Markers written by C(ansible.builtin.blockinfile)
    with the same text are taken over.
  - After writing, asks the running PostgreSQL to parse the file (C(pg_hba_file_rules)). A file with errors is put
    back as it was and the task fails with PostgreSQL's messages, so the reload that follows never meets it and the
    next restart does not refuse to start.
  - The write is atomic and never follows a symbolic link.
version_added: 0.1.0
options:
  path:
    description: The pg_hba.conf file (C(SHOW hba_file)); it must exist. One of O(path) (with O(name)) and O(blocks) is required.
    type: path
  name:
    description: Name of the block in its markers, 1 to 40 lower-case letters, digits or C(_).
    type: str
  lines:
    description: The rules (and comments) of the block, one per item.
    type: list
    elements: str
    default: []
  state:
    description: C(absent) removes the block.
    type: str
    choices: [present, absent]
    default: present
  kind:
    description:
      - V(hba) for pg_hba.conf rules; V(ident) for pg_ident.conf map lines (C(MAP SYSTEM-USER PG-USER), plain names).
      - PostgreSQL 16 and later check an ident file through C(pg_ident_file_mappings); older ones cannot, and the
        lines are only checked against the plain form.
    type: str
    choices: [hba, ident]
    default: hba
    version_added: 0.2.0
  blocks:
    description:
      - Several blocks in one call (pg_ident.conf's map, then pg_hba.conf's rules), each with the suboptions O(path),
        O(name), O(lines), O(state) and O(kind); instead of those options. Written and checked in order.
    type: list
    elements: dict
    version_added: 0.3.0
    suboptions:
      path:
        description: As O(path).
        type: path
        required: true
      name:
        description: As O(name).
        type: str
        required: true
      lines:
        description: As O(lines).
        type: list
        elements: str
        default: []
      state:
        description: As O(state).
        type: str
        choices: [present, absent]
        default: present
      kind:
        description: As O(kind).
        type: str
        choices: [hba, ident]
        default: hba
  postgresql_port:
    description: Port of the cluster that reads this file; the check connects over its socket as C(postgres).
    type: int
    default: 5432
  check:
    description: Ask PostgreSQL to parse the new file, and put the old one back on an error.
    type: bool
    default: true
extends_documentation_fragment:
  - fediops.mastodon.attributes
  - fediops.mastodon.service
attributes:
  check_mode:
    details: Reports what would change without writing or asking PostgreSQL.
  diff_mode:
    support: full
    details: Shows the file before and after.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Let the replicas replicate
  fediops.mastodon.pg_hba_block:
    path: /etc/postgresql/15/main/pg_hba.conf
    name: read_replica
    lines:
      - host    replication    replicator    10.0.0.2/32    scram-sha-256

- name: The same, and reload PostgreSQL for the new lines in the same call
  fediops.mastodon.pg_hba_block:
    path: /etc/postgresql/15/main/pg_hba.conf
    name: read_replica
    lines:
      - host    replication    replicator    10.0.0.2/32    scram-sha-256
    service:
      units: [postgresql@15-main.service]
      reload_files: [/etc/postgresql/15/main/pg_hba.conf]
"""

RETURN = r"""
changed_paths:
  description: The files whose block changed (or would).
  returned: always
  type: list
  elements: str
  version_added: 0.3.0
checked:
  description: Whether PostgreSQL parsed the new file (false when it was unchanged, in check mode, or PostgreSQL was down).
  returned: always
  type: bool
service:
  description: What O(service) did, as M(fediops.mastodon.service_apply) returns it (C(reloaded), ...).
  returned: when O(service) is given
  type: dict
  version_added: 0.3.0
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediops.mastodon.plugins.module_utils import service_run
from ansible_collections.fediops.mastodon.plugins.module_utils.pg_hba import PgHbaError, replace_block
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import TextFileError, read_text, write_atomically

ERRORS_SQL = {
    "hba": "SELECT line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number;\n",
    # pg_ident_file_mappings exists from PostgreSQL 16; an older server has nothing to check it with.
    "ident": "SELECT to_regclass('pg_catalog.pg_ident_file_mappings') IS NOT NULL AS can_check \\gset\n"
             "\\if :can_check\n"
             "SELECT line_number || ': ' || error FROM pg_ident_file_mappings WHERE error IS NOT NULL "
             "ORDER BY line_number;\n"
             "\\endif\n",
}


def postgresql_errors(module, port, kind="hba"):
    """(errors, reachable): PostgreSQL's parse errors of the file on disk."""
    argv = ["psql", "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-p", str(port), "-d", "postgres", "-f", "-"]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    rc, out, err = module.run_command(argv, data=ERRORS_SQL[kind], binary_data=True, check_rc=False)
    if rc != 0:
        return [err.strip() or out.strip()], False
    return [line for line in out.splitlines() if line.strip()], True


def apply_block(module, path, name, lines, state, kind, port, check):
    """Write one block and have PostgreSQL check the file: (changed, checked, diff). A file it cannot read fails."""
    if not os.path.lexists(path):
        module.fail_json(msg="%s does not exist: is PostgreSQL installed, and is this its hba_file?" % path)
    try:
        before = read_text(path)
        after = replace_block(before, name, lines, state == "present", kind)
    except (PgHbaError, TextFileError) as exc:
        module.fail_json(msg="%s left unchanged: %s" % (path, exc))
    diff = dict(before_header=path, after_header=path, before=before, after=after)
    if after == before or module.check_mode:
        return after != before, False, diff
    write_atomically(path, after)
    checked = False
    if check:
        errors, reachable = postgresql_errors(module, port, kind)
        if not reachable:
            module.warn("PostgreSQL could not check %s (%s); it takes effect at the next reload" % (path, errors[0]))
        elif errors:
            write_atomically(path, before)
            module.fail_json(msg="PostgreSQL cannot read the new %s, so the old file was put back and nothing was "
                                 "reloaded: %s" % (path, "; ".join("line %s" % e for e in errors)), changed=False)
        else:
            checked = True
    return True, checked, diff


def main():
    block = dict(
        path=dict(type="path", required=True),
        name=dict(type="str", required=True),
        lines=dict(type="list", elements="str", default=[]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        kind=dict(type="str", choices=["hba", "ident"], default="hba"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            dict((key, dict(spec, required=False)) for key, spec in block.items()),
            blocks=dict(type="list", elements="dict", options=block),
            postgresql_port=dict(type="int", default=5432),
            check=dict(type="bool", default=True),
            service=dict(type="dict"),
        ),
        required_one_of=[["path", "blocks"]],
        mutually_exclusive=[["path", "blocks"], ["name", "blocks"]],
        required_together=[["path", "name"]],
        supports_check_mode=True,
    )
    p = module.params
    # A wrong `service` option stops the call before any file is written.
    service = service_run.validated(module, p["service"]) if p["service"] is not None else None
    blocks = p["blocks"] or [dict((key, p[key]) for key in block)]
    result = dict(changed=False, checked=False, changed_paths=[])
    diffs = []
    for item in blocks:
        changed, checked, diff = apply_block(module, item["path"], item["name"], item["lines"], item["state"],
                                             item["kind"], p["postgresql_port"], p["check"])
        if changed:
            result["changed"] = True
            result["changed_paths"].append(item["path"])
            diffs.append(diff)
        result["checked"] = result["checked"] or checked
    if module._diff:
        result["diff"] = diffs if p["blocks"] else diffs[0] if diffs else dict(
            before_header=blocks[0]["path"], after_header=blocks[0]["path"], before="", after="")
    if service is not None:
        service_run.then(module, service, result, written=result["changed_paths"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
