# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
name: pgbouncer_connstr
short_description: The right-hand side of a pgbouncer.ini [databases] line
version_added: 0.1.0
description:
  - Returns C(host=... port=... dbname=...) (and C(pool_size), C(reserve_pool), C(max_db_connections),
    C(pool_mode) when given) for one entry, never a password. Fails on an entry PgBouncer could not load.
  - The other filters of this file serve the C(fediops.mastodon.pgbouncer) role
    (C(pgbouncer_database_problems), C(pgbouncer_nofile_limit)); their logic is in
    C(plugins/module_utils/pgbouncer_ini.py).
options:
  _input:
    description: "The entry: C({name, host, port, dbname})."
    type: dict
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: A replica entry
  ansible.builtin.debug:
    msg: "mastodon_replica = {{ {'name': 'mastodon_replica', 'host': '10.0.0.2', 'port': 5432,
      'dbname': 'mastodon_production'} | fediops.mastodon.pgbouncer_connstr }}"
"""

RETURN = r"""
_value:
  description: The connection string, for example C(host=10.0.0.2 port=5432 dbname=mastodon_production).
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.pgbouncer_ini import (
    IniError,
    connstr,
    database_problems,
    nofile_limit,
)


def pgbouncer_connstr(entry):
    try:
        return connstr(entry)
    except IniError as exc:
        raise AnsibleFilterError("pgbouncer_connstr: %s" % exc)


def pgbouncer_database_problems(entries):
    return database_problems(entries)


def pgbouncer_nofile_limit(max_client_conn, pool_count, default_pool_size, reserve_pool_size=0, cap=20000):
    limit, wanted = nofile_limit(max_client_conn, pool_count, default_pool_size, reserve_pool_size, cap)
    return {"limit": limit, "wanted": wanted}


class FilterModule(object):
    def filters(self):
        return {
            "pgbouncer_connstr": pgbouncer_connstr,
            "pgbouncer_database_problems": pgbouncer_database_problems,
            "pgbouncer_nofile_limit": pgbouncer_nofile_limit,
        }
