#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: systemd_dropin
short_description: Write or remove one systemd drop-in, and the unit's drop-in folder once it is empty
description:
  - Renders O(settings) as a drop-in C(/etc/systemd/system/UNIT.d/NAME.conf) (root, 0644), written atomically, or
    removes it and then the folder if nothing else is left in it.
  - Restarts are not its business; M(fediops.mastodon.service_apply) finds a drop-in newer than the running unit.
    Run C(systemctl daemon-reload) (or let M(fediops.mastodon.service_apply) do it) before starting the unit.
  - Settings are never secret, since unit files and drop-ins are readable by every local user.
version_added: 0.1.0
options:
  unit:
    description: The unit, with its suffix (V(pgbouncer.service), V(mastodon-sidekiq@.service)).
    type: str
    required: true
  name:
    description: The drop-in's file name without V(.conf).
    type: str
    default: fediops
  settings:
    description: "Sections and settings, C({Service: {LimitNOFILE: 4096, Environment: [A=1, B=2]}}); a list writes the key once per value."
    type: dict
    default: {}
  state:
    description: Whether the drop-in should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Reports what would change.
  diff_mode:
    support: full
    details: The drop-in's text before and after.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Raise PgBouncer's open-file limit
  fediops.mastodon.systemd_dropin:
    unit: pgbouncer.service
    name: fediops-limits
    settings:
      Service:
        LimitNOFILE: 4096
"""

RETURN = r"""
path:
  description: The drop-in's path.
  returned: always
  type: str
dropin_changed:
  description: The drop-in itself is (or would be) written or removed; false when only an empty folder goes.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import DropinError, dropin_path, render_dropin
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import TextFileError, read_text, write_atomically


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str", required=True),
            name=dict(type="str", default="fediops"),
            settings=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        path = dropin_path(p["unit"], p["name"])
        after = render_dropin(p["settings"]) if p["state"] == "present" else ""
        before = read_text(path)
    except (DropinError, TextFileError) as exc:
        module.fail_json(msg=str(exc))
    folder = os.path.dirname(path)
    result = dict(changed=False, path=path)
    dropin_changed = before != after if p["state"] == "present" else os.path.lexists(path)
    if p["state"] == "present":
        result["changed"] = before != after
        if result["changed"] and not module.check_mode:
            if not os.path.isdir(folder):
                os.mkdir(folder, 0o700)
            write_atomically(path, after, mode=0o644, uid=0, gid=0)
        # The folder as the file task of earlier releases kept it: root's, 0755.
        if os.path.isdir(folder):
            folder_args = module.load_file_common_arguments(dict(path=folder, owner="root", group="root", mode="0755"))
            result["changed"] = module.set_fs_attributes_if_different(folder_args, result["changed"])
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(dict(path=path, owner="root", group="root", mode="0644"))
            result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    else:
        result["changed"] = os.path.lexists(path)
        left = [entry for entry in (os.listdir(folder) if os.path.isdir(folder) else [])
                if entry != os.path.basename(path)]
        if not module.check_mode:
            if result["changed"]:
                os.unlink(path)
            if os.path.isdir(folder) and not left:
                os.rmdir(folder)
                result["changed"] = True
        elif os.path.isdir(folder) and not left:
            result["changed"] = True
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header=path, after_header=path)
    module.exit_json(dropin_changed=dropin_changed, **result)


if __name__ == "__main__":
    main()
