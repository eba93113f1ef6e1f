#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: systemd_dropin
short_description: Write or remove systemd drop-ins, and a unit's drop-in folder once it is empty
description:
  - Renders O(settings) as a drop-in C(/etc/systemd/system/UNIT.d/NAME.conf) (root, 0644), written atomically, or
    removes it and then the folder if nothing else is left in it.
  - Restarts are not its business; M(fediops.mastodon.service_apply) finds a drop-in newer than the running unit.
    Run C(systemctl daemon-reload) (or let M(fediops.mastodon.service_apply) do it) before starting the unit.
  - Settings are never secret, since unit files and drop-ins are readable by every local user.
version_added: 0.1.0
options:
  unit:
    description:
      - The unit, with its suffix (V(pgbouncer.service), V(mastodon-sidekiq@.service)).
      - One of O(unit) and O(dropins) is required.
    type: str
  dropins:
    description:
      - Several units' drop-ins of the same O(name) in one call (one per Sidekiq process), instead of O(unit),
        O(settings) and O(state). All are checked before any is written.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      unit:
        description: The unit, with its suffix.
        type: str
        required: true
      settings:
        description: As O(settings).
        type: dict
        default: {}
      state:
        description: As O(state), which it defaults to.
        type: str
        choices: [present, absent]
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
    details: The drop-in's text before and after (one diff per changed drop-in with O(dropins)).
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Give two Sidekiq processes their own command
  fediops.mastodon.systemd_dropin:
    name: sidekiq-queues
    dropins:
      - unit: mastodon-sidekiq@default.service
        settings: {Service: {ExecStart: ["", "/usr/bin/bundle exec sidekiq -c 10 -q default"]}}
      - unit: mastodon-sidekiq@push.service
        settings: {Service: {ExecStart: ["", "/usr/bin/bundle exec sidekiq -c 5 -q push"]}}

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
  returned: with O(unit)
  type: str
dropin_changed:
  description: The drop-in itself is (or would be) written or removed; false when only an empty folder goes.
  returned: with O(unit)
  type: bool
dropins:
  description: For each drop-in, C(unit), C(path) and C(dropin_changed).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import DropinError
from ansible_collections.fediops.mastodon.plugins.module_utils.unit_files import apply_dropin, check_dropin


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str"),
            name=dict(type="str", default="fediops"),
            settings=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            dropins=dict(type="list", elements="dict", options=dict(
                unit=dict(type="str", required=True),
                settings=dict(type="dict", default={}),
                state=dict(type="str", choices=["present", "absent"]),
            )),
        ),
        required_one_of=[["unit", "dropins"]],
        mutually_exclusive=[["unit", "dropins"]],
        supports_check_mode=True,
    )
    p = module.params
    wanted = [dict(unit=p["unit"], settings=p["settings"], state=p["state"])] if p["unit"] else [
        dict(item, state=item["state"] or p["state"]) for item in p["dropins"]]
    # Every drop-in is checked before the first is written: a bad one changes nothing.
    for item in wanted:
        try:
            check_dropin(item["unit"], p["name"], item["settings"], item["state"])
        except DropinError as exc:
            module.fail_json(msg=str(exc))
    result = dict(changed=False, dropins=[])
    diffs = []
    for item in wanted:
        changed, dropin_changed, path, diff = apply_dropin(module, item["unit"], p["name"], item["settings"], item["state"])
        result["changed"] = result["changed"] or changed
        result["dropins"].append(dict(unit=item["unit"], path=path, dropin_changed=dropin_changed))
        if diff["before"] != diff["after"]:
            diffs.append(diff)
    if p["unit"]:
        result.update(path=result["dropins"][0]["path"], dropin_changed=result["dropins"][0]["dropin_changed"])
    if module._diff:
        result["diff"] = diffs[0] if p["unit"] and diffs else diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
