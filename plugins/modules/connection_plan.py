#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: connection_plan
short_description: Size Mastodon's database connections and check them against PgBouncer and PostgreSQL
version_added: 0.1.0
description:
  - Computes the database connection budget of a Mastodon server the way Mastodon's "Scaling up" guide
    describes it, without changing anything, so it can run on the controller or on any host.
  - Every process gets a C(DB_POOL) of at least its threads. The client connections Mastodon opens are all
    threads combined (web processes x threads, each Sidekiq process's threads, streaming instances x C(DB_POOL)).
  - With PgBouncer, PostgreSQL sees at most O(pgbouncer.pools) x (O(pgbouncer.default_pool_size) +
    O(pgbouncer.reserve_pool_size)) server connections; without it, every client connection.
  - A plan is infeasible when the clients exceed PgBouncer's C(max_client_conn), or the server connections
    exceed C(max_connections) minus C(superuser_reserved_connections). Each problem names the numbers and
    what to change.
  - The filter P(fediops.mastodon.connection_plan#filter) gives the same answer on the controller.
options:
  web:
    description: Puma, as C(WEB_CONCURRENCY) processes of C(MAX_THREADS) threads.
    type: dict
    suboptions:
      name:
        description: Name shown in the result.
        type: str
        default: web
      processes:
        description: C(WEB_CONCURRENCY), the number of Puma worker processes.
        type: int
        required: true
      threads:
        description: C(MAX_THREADS), the threads of each worker.
        type: int
        required: true
      db_pool:
        description: C(DB_POOL) for the web processes; at least O(web.threads). Defaults to the threads.
        type: int
  sidekiq:
    description:
      - The Sidekiq processes, one entry each.
      - Entries of the role variable C(sidekiq_queues_processes) can be passed as they are.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the process, unique in the list.
        type: str
        required: true
      threads:
        description: The process's concurrency (C(sidekiq -c)).
        type: int
        required: true
      db_pool:
        description: C(DB_POOL) for this process; at least its threads. Defaults to the threads.
        type: int
      state:
        description: A process that is V(absent) opens no connection and is left out of the plan.
        type: str
        choices: [present, absent]
        default: present
      queues:
        description: Accepted and ignored, so that role entries can be passed as they are.
        type: list
        elements: str
      environment:
        description: Accepted and ignored (and never logged), so that role entries can be passed as they are.
        type: dict
  streaming:
    description: Mastodon's streaming server, as instances (C(mastodon-streaming@PORT)) each with its own pg pool.
    type: dict
    suboptions:
      name:
        description: Name shown in the result.
        type: str
        default: streaming
      instances:
        description: Number of streaming processes.
        type: int
        required: true
      db_pool:
        description: C(DB_POOL) of each instance.
        type: int
        default: 10
  pgbouncer:
    description: PgBouncer in front of PostgreSQL. Leave it out when Mastodon connects to PostgreSQL directly.
    type: dict
    suboptions:
      max_client_conn:
        description: PgBouncer's C(max_client_conn); required unless every entry of O(pgbouncer.hosts) sets it.
        type: int
      default_pool_size:
        description:
          - PgBouncer's C(default_pool_size), server connections per database/user pair; required unless every entry
            of O(pgbouncer.hosts) sets it.
        type: int
      processes:
        description:
          - PgBouncer processes sharing one port (C(so_reuseport), C(pgbouncer_processes)). Each opens every pool,
            so a PgBouncer may open C(processes x pools x (default_pool_size + reserve_pool_size)) server connections.
        type: int
        default: 1
        version_added: 0.2.0
      hosts:
        description:
          - One entry per PgBouncer, each with settings of its own (C(playbooks/scale.yml) with one PgBouncer on every
            application host). O(pgbouncer.instances) is then the number of entries.
        type: list
        elements: dict
        version_added: 0.2.0
        suboptions:
          name:
            description: The host, named in the result and in the problems.
            type: str
            required: true
          processes:
            description: Its C(pgbouncer_processes); O(pgbouncer.processes) by default.
            type: int
          default_pool_size:
            description: Its C(default_pool_size); O(pgbouncer.default_pool_size) by default.
            type: int
          reserve_pool_size:
            description: Its C(reserve_pool_size); O(pgbouncer.reserve_pool_size) by default.
            type: int
          max_client_conn:
            description: Its C(max_client_conn); O(pgbouncer.max_client_conn) by default.
            type: int
          clients:
            description: The client connections it serves, checked against its C(max_client_conn).
            type: int
      pools:
        description: Number of database/user pairs that Mastodon uses through PgBouncer (a read replica adds one).
        type: int
        default: 1
      reserve_pool_size:
        description: PgBouncer's C(reserve_pool_size).
        type: int
        default: 0
      instances:
        description:
          - How many PgBouncers open server connections to PostgreSQL, each with its own pools.
            V(1) for one PgBouncer on the database host; the number of application hosts when every
            application host runs its own.
        type: int
        default: 1
        version_added: 0.1.0
      clients_per_instance:
        description:
          - Client connections of the busiest PgBouncer, checked against O(pgbouncer.max_client_conn).
            Defaults to all client connections divided evenly over O(pgbouncer.instances).
        type: int
        version_added: 0.1.0
  replica:
    description:
      - Mastodon 4.2 and later read from a replica, so every web and Sidekiq process holds a second
        pool of C(DB_POOL) connections; their client connections count twice.
    type: bool
    default: false
    version_added: 0.1.0
  postgresql:
    description: The PostgreSQL server's limits. Leave it out to skip that check.
    type: dict
    suboptions:
      max_connections:
        description: PostgreSQL's C(max_connections).
        type: int
        required: true
      superuser_reserved_connections:
        description: PostgreSQL's C(superuser_reserved_connections).
        type: int
        default: 3
  fail_on_infeasible:
    description:
      - Fail when the plan is infeasible, with every problem in the message.
      - With V(false), the module returns O(ignore:feasible=false) and the problems, and the play goes on.
    type: bool
    default: true
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Can run in check mode; the module only computes, so it behaves the same.
  diff_mode:
    details: Nothing changes, so there is no diff.
author:
  - fediops.mastodon contributors (@fediops)
"""

EXAMPLES = r"""
- name: Check the planned processes against PgBouncer and PostgreSQL
  fediops.mastodon.connection_plan:
    web:
      processes: 2
      threads: 5
    sidekiq:
      - name: default
        threads: 25
      - name: push
        threads: 10
        db_pool: 15
    streaming:
      instances: 2
    pgbouncer:
      max_client_conn: 200
      default_pool_size: 20
    postgresql:
      max_connections: 100
  register: plan

- name: Set DB_POOL for the web processes from the plan
  fediops.mastodon.env_file:
    values:
      DB_POOL: "{{ (plan.processes | selectattr('kind', 'equalto', 'web') | first).db_pool }}"

- name: Only report, do not fail
  fediops.mastodon.connection_plan:
    web: {processes: 4, threads: 10}
    postgresql: {max_connections: 30}
    fail_on_infeasible: false
  register: plan

- name: Show what to change
  ansible.builtin.debug:
    msg: "{{ plan.problems }}"
  when: not plan.feasible
"""

RETURN = r"""
processes:
  description: One entry per process kind (web, each Sidekiq process, streaming), in that order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Name of the process.
      type: str
      sample: push
    kind:
      description: V(web), V(sidekiq) or V(streaming).
      type: str
      sample: sidekiq
    count:
      description: How many such processes run (web processes, streaming instances, 1 for a Sidekiq process).
      type: int
      sample: 1
    threads:
      description: Threads of each process; for streaming, the pool size (queries that may run at once).
      type: int
      sample: 10
    db_pool:
      description: The C(DB_POOL) each process must get, at least its threads.
      type: int
      sample: 15
    connections:
      description: Client connections these processes open, C(count) x C(threads).
      type: int
      sample: 10
  sample:
    - {name: web, kind: web, count: 2, threads: 5, db_pool: 5, connections: 10}
    - {name: push, kind: sidekiq, count: 1, threads: 10, db_pool: 15, connections: 10}
total_threads:
  description: All threads combined.
  returned: success
  type: int
  sample: 75
client_connections:
  description: Connections Mastodon opens to PgBouncer (or to PostgreSQL without it); equals O(ignore:total_threads).
  returned: success
  type: int
  sample: 75
server_connections:
  description: Connections PostgreSQL sees from Mastodon.
  returned: success
  type: int
  sample: 20
limits:
  description: The limits the plan was checked against; V(null) where a section was not given.
  returned: success
  type: dict
  contains:
    max_client_conn:
      description: PgBouncer's C(max_client_conn); with several PgBouncers, the lowest.
      type: int
    pgbouncer_server_capacity:
      description: What every PgBouncer may open in all, each processes x pools x (default_pool_size + reserve_pool_size).
      type: int
    pgbouncer_instances:
      description: How many PgBouncers open server connections (0 without PgBouncer).
      type: int
    clients_per_pgbouncer:
      description: Client connections of the busiest PgBouncer.
      type: int
    max_connections:
      description: PostgreSQL's C(max_connections).
      type: int
    superuser_reserved_connections:
      description: PostgreSQL's C(superuser_reserved_connections).
      type: int
    postgresql_available:
      description: C(max_connections) minus C(superuser_reserved_connections).
      type: int
  sample: {max_client_conn: 200, pgbouncer_server_capacity: 20, max_connections: 100,
           superuser_reserved_connections: 3, postgresql_available: 97}
pgbouncers:
  description:
    - Every PgBouncer the plan counts, with C(name), C(processes), C(pools), C(default_pool_size), C(reserve_pool_size),
      C(max_client_conn), C(clients) and C(capacity) (the server connections it may open).
  returned: success
  type: list
  elements: dict
  version_added: 0.2.0
feasible:
  description: Whether the plan fits every given limit.
  returned: success
  type: bool
  sample: true
problems:
  description: One sentence per problem, naming the numbers and what to change; empty when feasible.
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import (
    ConnectionPlanError,
    plan,
)


def _drop_none(value):
    """The module's defaults fill absent suboptions with None; plan() treats None as 'not given'."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def main():
    module = AnsibleModule(
        argument_spec=dict(
            web=dict(type="dict", options=dict(
                name=dict(type="str", default="web"),
                processes=dict(type="int", required=True),
                threads=dict(type="int", required=True),
                db_pool=dict(type="int"),
            )),
            sidekiq=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                threads=dict(type="int", required=True),
                db_pool=dict(type="int"),
                state=dict(type="str", choices=["present", "absent"], default="present"),
                queues=dict(type="list", elements="str"),
                # Ignored, and possibly holding secrets: never echo it in the invocation.
                environment=dict(type="dict", no_log=True),
            )),
            streaming=dict(type="dict", options=dict(
                name=dict(type="str", default="streaming"),
                instances=dict(type="int", required=True),
                db_pool=dict(type="int", default=10),
            )),
            pgbouncer=dict(type="dict", options=dict(
                max_client_conn=dict(type="int"),
                default_pool_size=dict(type="int"),
                pools=dict(type="int", default=1),
                reserve_pool_size=dict(type="int", default=0),
                processes=dict(type="int", default=1),
                instances=dict(type="int", default=1),
                clients_per_instance=dict(type="int"),
                hosts=dict(type="list", elements="dict", options=dict(
                    name=dict(type="str", required=True),
                    processes=dict(type="int"),
                    default_pool_size=dict(type="int"),
                    reserve_pool_size=dict(type="int"),
                    max_client_conn=dict(type="int"),
                    clients=dict(type="int"),
                )),
            )),
            postgresql=dict(type="dict", options=dict(
                max_connections=dict(type="int", required=True),
                superuser_reserved_connections=dict(type="int", default=3),
            )),
            replica=dict(type="bool", default=False),
            fail_on_infeasible=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    sections = {key: _drop_none(module.params[key])
                for key in ("web", "sidekiq", "streaming", "pgbouncer", "postgresql")}
    try:
        result = plan(replica=module.params["replica"], **sections)
    except ConnectionPlanError as exc:
        module.fail_json(msg="connection plan: %s" % exc)
    if not result["feasible"] and module.params["fail_on_infeasible"]:
        module.fail_json(msg="The connection plan does not fit: " + " ".join(result["problems"]),
                         changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
