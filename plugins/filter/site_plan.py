# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters site_plan_input, fleet_connection_plan, site_report, fleet_report and site_report_lines for
playbooks/scale.yml.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import ConnectionPlanError
from ansible_collections.fediops.mastodon.plugins.module_utils.site_plan import (
    SitePlanError,
    fleet_plan,
    fleet_report,
    report_lines,
    site_input,
    site_report,
)


def site_plan_input(demands, pgbouncer=None, pgbouncer_on_app_hosts=False, replica=False):
    try:
        return site_input(demands, pgbouncer=pgbouncer, pgbouncer_on_app_hosts=pgbouncer_on_app_hosts, replica=replica)
    except (SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("site_plan_input: %s" % exc) from exc


def fleet_connection_plan(fleet, live=None):
    try:
        return fleet_plan(fleet, live)
    except (SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("fleet_connection_plan: %s" % exc) from exc


def site_report_filter(demands, site_plan, pgbouncer=None, cache=None, replica=None):
    try:
        return site_report(demands, site_plan, pgbouncer=pgbouncer, cache=cache, replica=replica)
    except (SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("site_report: %s" % exc) from exc


def fleet_report_filter(fleet, site_plan, parts=None):
    try:
        return fleet_report(fleet, site_plan, parts)
    except (SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("fleet_report: %s" % exc) from exc


def site_report_lines(report):
    try:
        return report_lines(report)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("site_report_lines: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {
            "site_plan_input": site_plan_input,
            "fleet_connection_plan": fleet_connection_plan,
            "site_report": site_report_filter,
            "fleet_report": fleet_report_filter,
            "site_report_lines": site_report_lines,
        }
