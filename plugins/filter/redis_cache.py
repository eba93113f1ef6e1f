# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the redis_cache role; their logic is in plugins/module_utils/redis_cache.py.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import redis_cache as rc


def _wrap(name, func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (rc.RedisCacheError, KeyError, TypeError) as exc:
            raise AnsibleFilterError("%s: %s" % (name, exc))
    run.__name__ = name
    return run


def redis_cache_env(style, host, port, password="", db=0, purpose="cache"):
    return rc.env_values(style, host, port, password or None, db, purpose)


def redis_cache_env_absent(_unused=None, purpose="cache"):
    return rc.env_absent_values(purpose)


class FilterModule(object):
    """Filters of the redis_cache role."""

    def filters(self):
        table = {
            "redis_cache_env": redis_cache_env,
            "redis_cache_env_absent": redis_cache_env_absent,
            "redis_cache_problems": rc.problems,
            "redis_cache_paths": rc.server_paths,
        }
        return dict((name, _wrap(name, func)) for name, func in table.items())
