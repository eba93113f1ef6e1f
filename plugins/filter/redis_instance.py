# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the Redis instance model (roles redis_cache and sidekiq_redis, through the internal role
redis_instance); their logic is in plugins/module_utils/redis_instance.py.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml. The
filters' earlier names (redis_cache_env, redis_cache_env_absent, redis_cache_problems, redis_cache_paths) are
routed here by meta/runtime.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import redis_instance as ri


def _wrap(name, func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ri.RedisInstanceError, KeyError, TypeError) as exc:
            raise AnsibleFilterError("%s: %s" % (name, exc))
    run.__name__ = name
    return run


def redis_instance_env(style, host, port, password="", db=0, purpose="cache"):
    return ri.env_values(style, host, port, password or None, db, purpose)


def redis_instance_env_absent(_unused=None, purpose="cache"):
    return ri.env_absent_values(purpose)


class FilterModule(object):
    """Filters of the Redis instance model."""

    def filters(self):
        table = {
            "redis_instance_env": redis_instance_env,
            "redis_instance_env_absent": redis_instance_env_absent,
            "redis_instance_problems": ri.problems,
            "redis_instance_paths": ri.server_paths,
            "redis_instance_variables": ri.variables,
        }
        return dict((name, _wrap(name, func)) for name, func in table.items())
