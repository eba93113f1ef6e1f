# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters input_problems, pg_hba_address and port_clash_problems; their logic is in plugins/module_utils/inputs.py.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.module_utils.inputs import hba_address, port_clashes, problems


def input_problems(checks):
    try:
        return problems([list(check) for check in checks])
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("input_problems: %s" % exc) from exc


def pg_hba_address(value):
    try:
        return hba_address(value)
    except ValueError as exc:
        raise AnsibleFilterError("pg_hba_address: %s" % exc) from exc


def port_clash_problems(ports, host="this host"):
    return port_clashes([list(p)[:2] + [list(p)[2] if len(p) > 2 else host] for p in ports])


class FilterModule:
    def filters(self):
        return {"input_problems": input_problems, "pg_hba_address": pg_hba_address,
                "port_clash_problems": port_clash_problems}
