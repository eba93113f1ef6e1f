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
  - The file is reached through the collection's safe walk (no link planted by another user is followed, only
    a regular file is read or replaced), because its folder belongs to the C(mastodon) user.
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
    description:
      - Mode of the file, in octal, for example V('0640'). Left as it is when omitted; a new file gets V('0640').
      - O(max_mode) still applies when the file holds a secret.
    type: raw
  max_mode:
    description:
      - The most a file that holds a secret may allow (a key that looks secret, or a URL with a password).
        Any permission bit beyond it is removed, so Mastodon's C(0644) becomes C(0640) once a password is in it,
        and an operator's stricter C(0600) is kept.
      - V('') leaves the mode to O(mode) alone.
    type: str
    default: '0640'
    version_added: 0.2.0
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  diff_mode:
    support: full
    details: Secret values are masked.
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import text_file
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import (
    EnvFileError,
    holds_secret,
    is_secret,
    mask,
    secret_parts,
    update,
)
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import TextFileError


class EnvFileModule(AnsibleModule):
    """AnsibleModule whose "Invoked with" journal line masks secrets a caller put in `values` by mistake."""

    def _log_invocation(self):
        # The journal line is written before main() can refuse the call: mask first, so the refusal never
        # leaves the secret behind it.
        for key, value in (self.params.get("values") or {}).items():
            if value is not None and is_secret(key, self.params.get("secret_keys") or [], value):
                self.no_log_values.update(secret_parts(value))
        super()._log_invocation()


def main():
    module = EnvFileModule(
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
            max_mode=dict(type="str", default="0640"),
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
    # The journal line masked them (EnvFileModule); refusing still makes the caller's mistake visible: a value in
    # `values` is shown in the task's output and registered result.
    exposed = sorted(key for key, value in module.params["values"].items()
                     if value is not None and is_secret(key, module.params["secret_keys"], value))
    if exposed:
        module.fail_json(msg="values holds %s, which look secret: pass them in secret_values, a no_log option, "
                             "so that they never reach the target's journal" % ", ".join(exposed))
    # Values of secret keys must never reach the log, whatever the caller's no_log says.
    for key, value in values.items():
        if value is not None and is_secret(key, secret_keys, value):
            module.no_log_values.update(secret_parts(value))

    try:
        exists = text_file.exists(path)
        if not exists and not module.params["create"]:
            module.fail_json(msg="%s does not exist and create is false" % path)
        before = text_file.read_text(path)
        after, added, updated, removed = update(before, values)
        mode = text_file.octal_mode(module.params["mode"])
        if module.params["mode"] is not None and mode is None:
            module.fail_json(msg="mode must be octal, such as '0640'; got %r" % (module.params["mode"],))
        cap = text_file.octal_mode(module.params["max_mode"]) if module.params["max_mode"] else None
        if module.params["max_mode"] and cap is None:
            module.fail_json(msg="max_mode must be octal, such as '0640'; got %r" % (module.params["max_mode"],))
        current = text_file.file_mode(path) if exists else None
        if cap is not None and holds_secret(after, secret_keys):
            mode = (mode if mode is not None else current if current is not None else 0o640) & cap
    except (EnvFileError, TextFileError) as exc:
        module.fail_json(msg="%s left unchanged: %s" % (path, exc))

    uid = text_file.user_id(module.params["owner"])
    gid = text_file.group_id(module.params["group"])
    if module.params["owner"] and uid is None:
        module.fail_json(msg="owner %s is not a user of this host" % module.params["owner"])
    if module.params["group"] and gid is None:
        module.fail_json(msg="group %s is not a group of this host" % module.params["group"])
    changed = after != before
    result = dict(changed=changed, added=added, updated=updated, removed=removed, path=path)
    if module._diff:
        result["diff"] = dict(
            before_header=path, after_header=path,
            before=mask(before, secret_keys), after=mask(after, secret_keys),
        )
    try:
        if changed and not module.check_mode:
            text_file.write_atomically(path, after, mode=mode, uid=uid, gid=gid)
        elif exists:
            # Owner and mode on the descriptor the safe walk opened, never through a path.
            result["changed"] = text_file.set_attributes(path, mode, uid, gid, module.check_mode) or changed
    except TextFileError as exc:
        module.fail_json(msg="%s left unchanged: %s" % (path, exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
