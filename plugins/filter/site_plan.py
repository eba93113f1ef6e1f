# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters site_plan_input, site_report and site_report_lines for playbooks/scale.yml."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: site_plan_input
short_description: Add the application hosts' connection demands up into one connection-plan input
version_added: 0.1.0
description:
  - Takes a mapping of host name to C({web, sidekiq, streaming}) demand and returns the C(web),
    C(sidekiq) and C(streaming) input of P(fediops.mastodon.connection_plan#filter).
  - Several hosts are summed; hosts that differ in threads or C(DB_POOL) are budgeted at the highest.
  - With O(pgbouncer) the result has a C(pgbouncer) section; with O(pgbouncer_on_app_hosts) it counts one
    PgBouncer per application host and checks the busiest host's clients against C(max_client_conn).
  - With O(replica) every web and Sidekiq process counts a second pool for the read replica.
  - The same file provides C(site_report) (demands, plan, pgbouncer, cache, replica to a report
    mapping) and C(site_report_lines) (the report as lines of text).
options:
  _input:
    description: Host name to demand.
    type: dict
    required: true
  pgbouncer:
    description: PgBouncer's limits (C(max_client_conn), C(default_pool_size), C(pools), C(reserve_pool_size)).
    type: dict
    version_added: 0.2.0
  pgbouncer_on_app_hosts:
    description: Every application host runs its own PgBouncer.
    type: bool
    default: false
    version_added: 0.2.0
  replica:
    description: Mastodon reads from a replica through a second pool in every Rails process.
    type: bool
    default: false
    version_added: 0.2.0
author:
  - fediops.mastodon contributors
"""

EXAMPLES = r"""
- name: Plan the whole inventory
  ansible.builtin.set_fact:
    plan: "{{ demands | fediops.mastodon.site_plan_input | combine({'postgresql': {'max_connections': 100}})
              | fediops.mastodon.connection_plan }}"
"""

RETURN = r"""
_value:
  description: C(web), C(sidekiq) and C(streaming) for the connection plan.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import ConnectionPlanError
from ansible_collections.fediops.mastodon.plugins.module_utils.site_plan import (
    SitePlanError,
    report_lines,
    site_input,
    site_report,
)


def site_plan_input(demands, pgbouncer=None, pgbouncer_on_app_hosts=False, replica=False):
    try:
        return site_input(demands, pgbouncer=pgbouncer, pgbouncer_on_app_hosts=pgbouncer_on_app_hosts, replica=replica)
    except (SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("site_plan_input: %s" % exc) from exc


def site_report_filter(demands, site_plan, pgbouncer=None, cache=None, replica=None):
    try:
        return site_report(demands, site_plan, pgbouncer=pgbouncer, cache=cache, replica=replica)
    except (SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("site_report: %s" % exc) from exc


def site_report_lines(report):
    try:
        return report_lines(report)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("site_report_lines: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {
            "site_plan_input": site_plan_input,
            "site_report": site_report_filter,
            "site_report_lines": site_report_lines,
        }
