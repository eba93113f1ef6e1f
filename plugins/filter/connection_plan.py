# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: connection_plan
short_description: Size Mastodon's database connections on the controller
version_added: 0.1.0
description:
  - The same computation as the module M(fediops.mastodon.connection_plan), as a filter, so roles can check
    a plan while validating, before any task changes a host.
  - Every thread that may touch the database needs a connection, so Mastodon opens as many client connections
    as all threads combined (twice for web and Sidekiq with O(replica)). Without PgBouncer, PostgreSQL sees
    them all; with it, at most C(pools x (default_pool_size + reserve_pool_size)) per PgBouncer.
  - Never fails on an infeasible plan; read RV(_value.feasible) and RV(_value.problems). Input that is not a
    plan (an unknown key, a missing number, C(db_pool) below threads) raises an error.
options:
  _input:
    description:
      - The plan, a mapping with the keys C(web), C(sidekiq), C(streaming), C(pgbouncer), C(postgresql) and
        C(replica), each as the module's option of the same name. Missing sections are left out.
      - V(null) is an empty plan.
    type: dict
    required: true
  web:
    description: Overrides C(web) of the input.
    type: dict
  sidekiq:
    description: Overrides C(sidekiq) of the input.
    type: list
    elements: dict
  streaming:
    description: Overrides C(streaming) of the input.
    type: dict
  pgbouncer:
    description: Overrides C(pgbouncer) of the input.
    type: dict
  postgresql:
    description: Overrides C(postgresql) of the input.
    type: dict
  replica:
    description: Overrides C(replica) of the input.
    type: bool
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Fail early when the Sidekiq processes do not fit PgBouncer
  vars:
    plan: >-
      {{ {'sidekiq': sidekiq_queues_processes, 'pgbouncer': {'max_client_conn': 100, 'default_pool_size': 20}}
         | fediops.mastodon.connection_plan }}
  ansible.builtin.assert:
    that: plan.feasible
    fail_msg: "{{ plan.problems | join(' ') }}"
"""

RETURN = r"""
_value:
  description: The plan, with the same keys as the module returns.
  type: dict
  contains:
    processes:
      description:
        - One entry for the web processes, one per Sidekiq process and one for the streaming instances, each with
          C(name), C(kind), C(count), C(threads), C(db_pool) and C(connections).
      type: list
      elements: dict
    total_threads:
      description: All threads combined.
      type: int
    client_connections:
      description: Connections Mastodon opens.
      type: int
    replica_client_connections:
      description: The part of RV(_value.client_connections) that goes to the read replica; 0 without O(replica).
      type: int
    server_connections:
      description: Connections PostgreSQL sees.
      type: int
    limits:
      description: The limits checked against.
      type: dict
    feasible:
      description: Whether the plan fits.
      type: bool
    problems:
      description: Sentences naming the numbers and what to change.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import (
    ConnectionPlanError,
    plan_from,
)


def connection_plan(data, **sections):
    """Return the connection plan of `data` ({web, sidekiq, streaming, pgbouncer, postgresql})."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AnsibleFilterError("connection_plan: the input must be a mapping, got %s" % type(data).__name__)
    merged = dict(data)
    merged.update(sections)
    try:
        return plan_from(merged)
    except ConnectionPlanError as exc:
        raise AnsibleFilterError("connection_plan: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"connection_plan": connection_plan}
