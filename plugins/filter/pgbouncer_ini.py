# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pgbouncer role; their logic is in plugins/module_utils/pgbouncer_ini.py.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""
from __future__ import annotations

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
