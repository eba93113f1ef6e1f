# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: redis_cache_env
short_description: The CACHE_REDIS_* values Mastodon needs to reach a separate cache Redis
version_added: 0.1.0
description:
  - Returns a dict for M(fediops.mastodon.env_file), with V(null) for the keys to remove.
  - Style V(url) writes C(CACHE_REDIS_URL) (password percent-encoded); style V(parts) writes
    C(CACHE_REDIS_HOST), C(CACHE_REDIS_PORT), C(CACHE_REDIS_DB) and C(CACHE_REDIS_PASSWORD) when a password is set,
    because Mastodon does not fill missing C(CACHE_REDIS_*) parts from C(REDIS_*).
  - The other filters of this file serve the C(fediops.mastodon.redis_cache) role
    (C(redis_cache_problems), C(redis_cache_paths), C(redis_cache_directives), C(redis_cache_secret_directives),
    C(redis_cache_parse_conf), C(redis_cache_plan), C(redis_cache_live_names), C(redis_cache_config_get),
    C(redis_cache_drift), C(redis_cache_set_commands), C(redis_cache_env_absent), C(redis_cache_admin_host),
    C(redis_cache_memory_bytes)); their logic is in C(plugins/module_utils/redis_cache.py).
positional: host, port, password, db
options:
  _input:
    description: V(url) or V(parts).
    type: str
    required: true
  host:
    description: The address Mastodon connects to. IPv6 addresses are written in brackets.
    type: str
    required: true
  port:
    description: The cache instance's port.
    type: int
    required: true
  password:
    description: The cache's password; empty for none.
    type: str
    default: ""
  db:
    description: The database number.
    type: int
    default: 0
author:
  - fediops.mastodon contributors
"""

EXAMPLES = r"""
- name: Point Mastodon's cache at the instance on port 6380
  fediops.mastodon.env_file:
    values: "{{ 'url' | fediops.mastodon.redis_cache_env('127.0.0.1', 6380, cache_password) }}"
    secret_keys: [CACHE_REDIS_URL, CACHE_REDIS_PASSWORD]

- name: Size in bytes of a Redis memory setting
  ansible.builtin.debug:
    msg: "{{ '256mb' | fediops.mastodon.redis_cache_memory_bytes }}"  # 268435456
"""

RETURN = r"""
_value:
  description: "C({CACHE_REDIS_URL: ..., CACHE_REDIS_HOST: null, ...}): every C(CACHE_REDIS_*) key, V(null) where it must go."
  type: dict
"""

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


def redis_cache_env(style, host, port, password="", db=0):
    return rc.env_values(style, host, port, password or None, db)


def redis_cache_env_absent(_unused=None):
    return rc.env_absent_values()


def redis_cache_memory_bytes(value):
    return rc.parse_memory(value)


class FilterModule(object):
    """Filters of the redis_cache role."""

    def filters(self):
        table = {
            "redis_cache_env": redis_cache_env,
            "redis_cache_env_absent": redis_cache_env_absent,
            "redis_cache_memory_bytes": redis_cache_memory_bytes,
            "redis_cache_problems": rc.problems,
            "redis_cache_paths": rc.server_paths,
            "redis_cache_directives": rc.directives,
            "redis_cache_secret_directives": rc.secret_directives,
            "redis_cache_parse_conf": rc.parse_conf,
            "redis_cache_plan": rc.plan,
            "redis_cache_live_names": rc.live_names,
            "redis_cache_config_get": rc.parse_config_get,
            "redis_cache_drift": rc.drift,
            "redis_cache_set_commands": rc.set_commands,
            "redis_cache_admin_host": rc.admin_host,
        }
        return dict((name, _wrap(name, func)) for name, func in table.items())
