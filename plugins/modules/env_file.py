#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: env_file
short_description: Manage KEY=VALUE settings in a dotenv file such as Mastodon's .env.production
version_added: 0.1.0
description:
  - Sets and removes keys in a C(KEY=VALUE) file the way Mastodon's dotenv readers understand it.
  - Only the lines of the keys given are touched; comments, blank lines, order and all other keys are kept.
  - Values are quoted only when dotenv needs it, with single quotes where possible so that C($) stays literal.
  - Values of secret keys are masked in the diff and never returned.
options:
  path:
    description: The file to manage.
    type: path
    default: /home/mastodon/live/.env.production
  values:
    description:
      - Keys to set, with their values. A value of V(null) removes the key.
      - Values are written as strings; V(true) becomes C(true).
      - Ansible writes every argument not declared secret to the target's journal before the module
        runs, so passwords, keys and URLs holding them belong in O(secret_values), never here.
    type: dict
    default: {}
  secret_values:
    description:
      - Like O(values), for secrets. This option is C(no_log), so its values never reach the target's
        journal, the output or a registered result, and they are masked in the diff.
    type: dict
    default: {}
    version_added: 0.1.0
  secret_keys:
    description:
      - Keys whose values are masked in the diff, in addition to keys whose name contains
        C(PASS), C(SECRET), C(_KEY), C(TOKEN), C(PRIVATE) or C(CREDENTIAL).
      - Values that look like credentials are always masked whatever their key - a URL with
        C(user:password@), an C(Authorization=) header, a C(Bearer) or C(Basic) token, a password in a query.
      - The rule is C(is_secret) in C(plugins/module_utils/env_file.py), the one the roles use too.
    type: list
    elements: str
    default: []
  create:
    description: Create the file if it does not exist. When V(false), a missing file is an error.
    type: bool
    default: true
  owner:
    description: Owner of the file. Left as it is when omitted.
    type: str
  group:
    description: Group of the file. Left as it is when omitted.
    type: str
  mode:
    description: Mode of the file, for example V('0640'). Left as it is when omitted; a new file gets V('0640').
    type: raw
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), with secrets masked.
    support: full
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Point Mastodon at PgBouncer
  fediops.mastodon.env_file:
    path: /home/mastodon/live/.env.production
    values:
      DB_HOST: 127.0.0.1
      DB_PORT: 6432
      PREPARED_STATEMENTS: "false"
    secret_values:
      DB_PASS: "{{ mastodon_db_password }}"
    owner: mastodon
    group: mastodon
    mode: "0640"
  notify: Restart mastodon services

- name: Stop using a separate cache
  fediops.mastodon.env_file:
    values:
      CACHE_REDIS_URL: null
"""

RETURN = r"""
added:
  description: Keys that were not in the file and were added.
  returned: always
  type: list
  elements: str
  sample: [PREPARED_STATEMENTS]
updated:
  description: Keys whose value changed (or whose duplicate definitions were dropped).
  returned: always
  type: list
  elements: str
  sample: [DB_PORT]
removed:
  description: Keys that were removed.
  returned: always
  type: list
  elements: str
  sample: [CACHE_REDIS_URL]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import (
    EnvFileError,
    is_secret,
    mask,
    secret_parts,
    update,
)
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import (
    TextFileError, group_id, octal_mode, read_text, user_id, write_atomically)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/home/mastodon/live/.env.production"),
            # Not secret on purpose, so diffs and the journal stay readable: secrets go in secret_values,
            # and a secret-looking key or a URL with a password here is refused below.
            values=dict(type="dict", default={}, no_log=False),
            secret_values=dict(type="dict", default={}, no_log=True),
            secret_keys=dict(type="list", elements="str", default=[], no_log=False),
            create=dict(type="bool", default=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    secret_values = module.params["secret_values"]
    values = dict(module.params["values"], **secret_values)
    secret_keys = list(module.params["secret_keys"]) + list(secret_values)
    overlap = sorted(set(module.params["values"]) & set(secret_values))
    if overlap:
        module.fail_json(msg="keys in both values and secret_values: %s" % ", ".join(overlap))
    # Ansible logs `values` in the target's journal before this code runs, so a secret there has already
    # leaked once; refusing it makes the caller's mistake visible instead of repeating it on every run.
    exposed = sorted(key for key, value in module.params["values"].items()
                     if value is not None and is_secret(key, module.params["secret_keys"], value))
    if exposed:
        module.fail_json(msg="values holds %s, which look secret: pass them in secret_values, a no_log option, "
                             "so that they never reach the target's journal" % ", ".join(exposed))
    # Values of secret keys must never reach the log, whatever the caller's no_log says.
    for key, value in values.items():
        if value is not None and is_secret(key, secret_keys, value):
            module.no_log_values.update(secret_parts(value))

    exists = os.path.lexists(path)
    if not exists and not module.params["create"]:
        module.fail_json(msg="%s does not exist and create is false" % path)
    try:
        before = read_text(path)
        after, added, updated, removed = update(before, values)
    except (EnvFileError, TextFileError) as exc:
        module.fail_json(msg="%s left unchanged: %s" % (path, exc))

    changed = after != before
    result = dict(changed=changed, added=added, updated=updated, removed=removed, path=path)
    if module._diff:
        result["diff"] = dict(
            before_header=path, after_header=path,
            before=mask(before, secret_keys), after=mask(after, secret_keys),
        )

    if changed and not module.check_mode:
        try:
            write_atomically(path, after, mode=octal_mode(module.params["mode"]),
                             uid=user_id(module.params["owner"]), gid=group_id(module.params["group"]))
        except TextFileError as exc:
            module.fail_json(msg="%s left unchanged: %s" % (path, exc))

    if os.path.exists(path) or module.check_mode:
        file_args = module.load_file_common_arguments(
            dict(path=path, owner=module.params["owner"], group=module.params["group"],
                 mode=module.params["mode"]))
        if os.path.exists(path):
            result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
        elif any(module.params[k] is not None for k in ("owner", "group", "mode")):
            result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
