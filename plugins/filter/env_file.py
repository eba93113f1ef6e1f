# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter env_secret_keys: which KEY=VALUE pairs are secret, by the rule of plugins/module_utils/env_file.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: env_secret_keys
short_description: The keys of an environment mapping whose values must never be shown
version_added: 0.1.0
description:
  - Applies the collection's one rule for secrets (C(is_secret) in C(plugins/module_utils/env_file.py)), the rule
    M(fediops.mastodon.env_file) masks its diff with and M(fediops.mastodon.sidekiq_plan) refuses unit
    environments by.
  - A key is secret when its name contains C(PASS), C(SECRET), C(_KEY), C(TOKEN), C(PRIVATE) or C(CREDENTIAL)
    (in any case), when O(extra) names it, or when its value looks like a credential - a URL with
    C(user:password@), an C(Authorization=) header, a C(Bearer) or C(Basic) token, a password in a query.
  - With O(urls), every key ending in C(_URL) counts as well.
positional: extra
options:
  _input:
    description: "The environment, C({KEY: value})."
    type: dict
    required: true
  extra:
    description: More keys to treat as secret.
    type: list
    elements: str
    default: []
  urls:
    description: Treat every C(*_URL) key as secret (for a writer that logs the values it does not treat as secret).
    type: bool
    default: false
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Pass the secret keys through env_file's no_log option
  vars:
    __secret: "{{ app_env_values | fediops.mastodon.env_secret_keys(app_env_secret_keys, urls=true) }}"
  fediops.mastodon.env_file:
    values: "{{ app_env_values | dict2items | rejectattr('key', 'in', __secret) | items2dict }}"
    secret_values: "{{ app_env_values | dict2items | selectattr('key', 'in', __secret) | items2dict }}"
"""

RETURN = r"""
_value:
  description: The secret keys, sorted; empty when none is.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import secret_keys


def env_secret_keys(values, extra=None, urls=False):
    if values is None:
        return []
    if not isinstance(values, dict):
        raise AnsibleFilterError("env_secret_keys: expects a mapping {KEY: value}, got %s" % type(values).__name__)
    return secret_keys(values, extra or (), urls=bool(urls))


class FilterModule:
    def filters(self):
        return {"env_secret_keys": env_secret_keys}
