# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_layout
short_description: Lay out a Mastodon fleet once, from the inventory and what each host publishes
version_added: 0.2.0
description:
  - The per-host view every play of C(playbooks/scale.yml) reads, computed once on the controller from the
    inventory groups, the playbook's C(scale_*) settings (their defaults live in C(plugins/module_utils/fleet.py))
    and what each host publishes (its address and the roles' plans).
  - Works out which host runs PgBouncer (and with which pools), the shared cache, Sidekiq's own Redis and the
    scheduler queue; where each application host points Mastodon; the ports of every host; who depends on whom;
    and the input of the connection plan, which counts every PgBouncer process.
  - Never fails on the operator's input; RV(_value.problems) lists what cannot work, each naming the variable.
    No secret goes in (only whether one is set) and none comes out.
options:
  _input:
    description:
      - C(groups), the inventory's groups (C(mastodon_db_primary), C(mastodon_db_replica), C(mastodon_app),
        C(mastodon_cache)).
      - C(settings), the C(scale_*) variables that are set (no secrets); an unknown name is a problem.
      - C(hosts), each host's C(address), C(version) and C(env_keys) (application hosts), and the roles' plans
        C(pgbouncer), C(redis_cache), C(sidekiq_redis), C(web), C(streaming), C(sidekiq), C(media). An application
        host may give its M(fediops.mastodon.mastodon_checkout) result as C(checkout) instead of C(version),
        C(upgrade) and C(env_keys); the media settings its role is not asked to change then come from it too.
    type: dict
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Lay out the fleet
  ansible.builtin.set_fact:
    fleet: >-
      {{ {'groups': groups, 'settings': {'scale_pgbouncer_placement': 'app'},
          'hosts': dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'fleet_host')))}
         | fediops.mastodon.fleet_layout }}
  run_once: true

- name: Point this host at its cache
  ansible.builtin.debug:
    msg: "{{ fleet.hosts[inventory_hostname].cache.address }}:{{ fleet.hosts[inventory_hostname].cache.port }}"
"""

RETURN = r"""
_value:
  description: The fleet.
  type: dict
  contains:
    primary:
      description: The database primary.
      type: str
    replicas:
      description: The read replicas this run manages.
      type: list
      elements: str
    apps:
      description: The application hosts.
      type: list
      elements: str
    version:
      description: The one Mastodon version of the application hosts.
      type: str
    scheduler:
      description: The application host whose Sidekiq serves the scheduler queue.
      type: str
    cache:
      description: The shared cache (C(host), C(bind), C(address), C(port), C(shared)), or null.
      type: dict
    sidekiq_redis:
      description: Sidekiq's own Redis, in the same shape, or null.
      type: dict
    pgbouncer:
      description:
        - C(enabled), C(placement), C(hosts) (the hosts that run one), C(databases) (extra C([databases]) entries),
          C(remote_clients), C(replica_clients), C(primary_address), C(endpoints) and C(report).
      type: dict
    native_replica:
      description: Whether Mastodon reads from the replica natively (4.2 and later).
      type: bool
    hosts:
      description:
        - Per host, C(groups), C(runs) (postgresql, mastodon, pgbouncer, cache, sidekiq_redis), C(ports),
          C(depends_on), C(pgbouncer_host) (the address its Mastodon reaches PgBouncer on for the replica),
          C(pgbouncer_server) (for a host that runs PgBouncer, C(postgresql_host), null on the primary, and
          C(runtime_databases), the entries the replica-lag fence repoints) and C(metrics) (C(pgbouncer),
          C(postgresql) and C(redis_instances) for the metrics role, without passwords); for an application host
          also C(scheduler), C(pgbouncer) (where Mastodon reaches it), C(cache), C(sidekiq_redis) and C(remove_own_cache).
      type: dict
    plan_input:
      description: The input of M(fediops.mastodon.connection_plan) for the whole fleet.
      type: dict
    demands:
      description: Each application host's processes, for the report.
      type: dict
    settings:
      description: The C(scale_*) settings with their defaults.
      type: dict
    problems:
      description: What cannot work, each naming the variable to change.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import ConnectionPlanError
from ansible_collections.fediops.mastodon.plugins.module_utils.fleet import FleetError, layout
from ansible_collections.fediops.mastodon.plugins.module_utils.site_plan import SitePlanError


def fleet_layout(data):
    try:
        return layout(data)
    except (FleetError, SitePlanError, ConnectionPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("fleet_layout: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"fleet_layout": fleet_layout}
