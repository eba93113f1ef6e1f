# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: mastodon_sandbox
short_description: The systemd sandbox of Mastodon's dist/ units, for a unit template
version_added: 0.2.0
description:
  - The C([Service]) hardening lines of Mastodon's C(dist/mastodon-*.service) units (C(ProtectSystem=strict),
    C(CapabilityBoundingSet=), C(PrivateUsers=true), the address families, the system call filter of that kind of
    process, ...), and C(ReadWritePaths=) for the checkout. Every unit the collection writes for Mastodon's
    processes takes this one copy.
options:
  _input:
    description: The kind of process, V(web), V(sidekiq) or V(streaming); it picks the system call filter.
    type: str
    required: true
  writable:
    description: The one folder the process may write, Mastodon's checkout.
    type: path
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
# In a unit template's [Service] section:
#   {{ 'sidekiq' | fediops.mastodon.mastodon_sandbox(mastodon_dir) }}
"""

RETURN = r"""
_value:
  description: The lines, each ending with a line break.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import DropinError
from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import mastodon_sandbox as sandbox


def mastodon_sandbox(kind, writable):
    try:
        return sandbox(kind, writable)
    except DropinError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"mastodon_sandbox": mastodon_sandbox}
