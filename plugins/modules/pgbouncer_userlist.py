#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pgbouncer_userlist
short_description: Manage users and their md5 or SCRAM-SHA-256 secrets in PgBouncer's userlist.txt
version_added: 0.1.0
description:
  - Writes C("name" "secret") lines into PgBouncer's O(path) for the users given, never a plaintext password.
  - md5 entries are C(md5) followed by the md5 of password and user name, as PostgreSQL makes them.
  - SCRAM entries use PostgreSQL's stored form C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>).
  - An existing entry of the right type that verifies against its password is kept as it is, so a SCRAM
    entry is not salted anew on every run.
  - Quoting follows PgBouncer's parser (a C(") inside a field is doubled). Comments, blank lines and
    users not listed are preserved unless O(exclusive=true).
  - An invalid name or password fails the task and leaves the file unchanged.
options:
  path:
    description: The auth_file PgBouncer reads.
    type: path
    default: /etc/pgbouncer/userlist.txt
  users:
    description: Users to manage.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The user name (shorter than 128 bytes once quoted, no line breaks).
        type: str
        required: true
      password:
        description: The plaintext password, required when O(users[].state=present). Never logged.
        type: str
      secret:
        description:
          - A precomputed secret of type O(auth_type) to write as is, for example the one PostgreSQL
            already stores, so that PgBouncer and PostgreSQL hold the same SCRAM secret.
          - It must verify against O(users[].password).
        type: str
      state:
        description: Whether the user's entry should exist.
        type: str
        choices: [present, absent]
        default: present
  auth_type:
    description: Which kind of secret to write; must match C(auth_type) in pgbouncer.ini.
    type: str
    choices: [md5, scram-sha-256]
    default: scram-sha-256
  exclusive:
    description: Remove every user (and unreadable line) not listed in O(users).
    type: bool
    default: false
  owner:
    description: Owner of the file.
    type: str
    default: postgres
  group:
    description: Group of the file.
    type: str
    default: postgres
  mode:
    description: Mode of the file.
    type: raw
    default: "0640"
extends_documentation_fragment:
  - fediops.mastodon.attributes
  - fediops.mastodon.service
attributes:
  diff_mode:
    support: full
    details: Shows the users added, changed or removed, with every secret masked.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Give PgBouncer the Mastodon user and an admin user
  fediops.mastodon.pgbouncer_userlist:
    auth_type: scram-sha-256
    users:
      - name: mastodon
        password: "{{ mastodon_db_password }}"
      - name: pgbouncer
        password: "{{ pgbouncer_admin_password }}"
  notify: Reload pgbouncer

- name: Write the SCRAM secret PostgreSQL already holds, and drop everybody else
  fediops.mastodon.pgbouncer_userlist:
    exclusive: true
    users:
      - name: mastodon
        password: "{{ mastodon_db_password }}"
        secret: "{{ secret_from_pg_authid }}"
"""

RETURN = r"""
added:
  description: Users that were not in the file.
  returned: always
  type: list
  elements: str
  sample: [pgbouncer]
changed_users:
  description: Users whose secret was replaced (wrong type, wrong password, or a duplicate line dropped).
  returned: always
  type: list
  elements: str
  sample: [mastodon]
removed:
  description: Users removed (O(users[].state=absent) or not listed with O(exclusive=true)).
  returned: always
  type: list
  elements: str
  sample: []
path:
  description: The file managed.
  returned: always
  type: str
  sample: /etc/pgbouncer/userlist.txt
service:
  description: What O(service) did, as M(fediops.mastodon.service_apply) returns it (C(reloaded), C(written), ...).
  returned: when O(service) is given
  type: dict
  version_added: 0.3.0
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import service_run
from ansible_collections.fediops.mastodon.plugins.module_utils.pg_secrets import (
    SecretError,
    mask_userlist,
    parse_userlist,
    update_userlist,
)
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import (
    TextFileError, group_id, octal_mode, read_text, user_id, write_atomically)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/pgbouncer/userlist.txt"),
            users=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                password=dict(type="str", no_log=True),
                secret=dict(type="str", no_log=True),
                state=dict(type="str", choices=["present", "absent"], default="present"),
            )),
            auth_type=dict(type="str", choices=["md5", "scram-sha-256"], default="scram-sha-256"),
            exclusive=dict(type="bool", default=False),
            owner=dict(type="str", default="postgres"),
            group=dict(type="str", default="postgres"),
            mode=dict(type="raw", default="0640"),
            service=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    # A wrong `service` option stops the call before anything is written.
    service = service_run.validated(module, module.params["service"]) if module.params["service"] is not None else None
    try:
        before = read_text(path)
    except TextFileError as exc:
        module.fail_json(msg="%s left unchanged: %s" % (path, exc))
    for user in module.params["users"]:
        if user["state"] == "present" and not user.get("password"):
            module.fail_json(msg="user %r: password is required when state is present" % user["name"])
    try:
        after, added, changed_users, removed = update_userlist(
            before, module.params["users"], module.params["auth_type"], module.params["exclusive"])
    except SecretError as exc:
        module.fail_json(msg="%s left unchanged: %s" % (path, exc))
    # Secrets are password equivalents for PgBouncer (md5 entirely): keep them out of every log.
    for kind, _name, secret, _raw in parse_userlist(after):
        if kind == "user" and secret:
            module.no_log_values.add(secret)
    for kind, _name, _secret, raw in parse_userlist(after):
        if kind == "broken":
            module.warn("%s has a line PgBouncer cannot read; PgBouncer stops reading the file there" % path)
            break

    changed = after != before
    result = dict(changed=changed, added=added, changed_users=changed_users, removed=removed, path=path)
    if module._diff:
        result["diff"] = dict(before_header=path, after_header=path,
                              before=mask_userlist(before), after=mask_userlist(after))
    if changed and not module.check_mode:
        try:
            write_atomically(path, after, mode=octal_mode(module.params["mode"]),
                             uid=user_id(module.params["owner"]), gid=group_id(module.params["group"]))
        except TextFileError as exc:
            module.fail_json(msg="%s left unchanged: %s" % (path, exc))

    file_args = module.load_file_common_arguments(dict(
        path=path, owner=module.params["owner"], group=module.params["group"], mode=module.params["mode"]))
    if os.path.exists(path):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    if service is not None:
        service_run.then(module, service, result, written=[path] if changed else [])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
