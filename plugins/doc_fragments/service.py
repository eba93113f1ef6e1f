# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option `service` of the modules that write what a service reads and then run it in the same call."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  service:
    description:
      - Options of M(fediops.mastodon.service_apply), checked before anything is written and applied in the same call
        once this module's files are written, so that writing and running is one module call on the host. The files
        this call changed count as pending (O(fediops.mastodon.service_apply#module:pending_files)).
      - What it did comes back as RV(service); its C(changed) counts in this module's, its fact C(fediops_pending_done)
        (check mode) is returned, and with diff mode the diff is a list, this module's first.
    type: dict
    version_added: 0.3.0
"""
