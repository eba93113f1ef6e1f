# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters upgrade_plan and upgrade_step_seconds for playbooks/upgrade.yml.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.upgrade import UpgradeError, plan, step_seconds


def upgrade_plan(hosts, target, stops=None):
    try:
        return plan(hosts, target, stops or [])
    except (UpgradeError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("upgrade_plan: %s" % exc) from exc


def upgrade_step_seconds(marks, end):
    try:
        return step_seconds(marks, end)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("upgrade_step_seconds: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"upgrade_plan": upgrade_plan, "upgrade_step_seconds": upgrade_step_seconds}
