# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: replica_fence_config
short_description: Work out what the replica-lag fence of one PgBouncer host runs with
version_added: 0.2.0
description:
  - The read_replica role's replica-lag fence (C(tasks_from=fence)) runs beside a PgBouncer that serves
    C(mastodon_replica). This filter checks its settings and returns the program's configuration (no secret in it)
    and the one line of its root-only password file.
  - Does not fail on bad settings; read RV(_value.problems). The role asserts on it before any change.
options:
  _input:
    description:
      - A mapping with C(database) (the C([databases]) name Mastodon reads through), C(pgbouncer) (the pgbouncer
        role's fact C(pgbouncer_runtime) - C(file), C(unit), C(databases), C(postgresql) with C(host) and C(port),
        C(client) with C(host) and C(port)), C(user) and C(password) (the role Mastodon reads as), C(max_lag_s),
        C(interval_s), C(resume_lag_s), C(resume_after_s), C(passfile) and C(state_file).
    type: dict
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Work out the fence's configuration
  ansible.builtin.set_fact:
    fence: >-
      {{ {'database': 'mastodon_replica', 'pgbouncer': pgbouncer_runtime, 'user': 'mastodon',
          'password': vault_mastodon_db_password, 'max_lag_s': 30, 'interval_s': 5, 'resume_lag_s': 10,
          'resume_after_s': 60, 'passfile': '/etc/pgbouncer/fediops-replica-fence.pgpass',
          'state_file': '/var/lib/fediops-mastodon/replica-fence.json'} | fediops.mastodon.replica_fence_config }}
  no_log: true
"""

RETURN = r"""
_value:
  description: The fence's files.
  type: dict
  contains:
    problems:
      description: Sentences naming what is wrong and the variable to change; empty when the fence can run.
      type: list
      elements: str
    config:
      description:
        - The program's configuration (written as JSON), null with problems. C(fenced_connstr) is the
          C([databases]) line that points the database at the primary, as PgBouncer reaches it; C(primary),
          C(standby) and C(pgbouncer) are where the program reads each.
      type: dict
    pgpass:
      description: The password file's line for the user (any host, port and database); null with problems.
      type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.pgbouncer_ini import IniError
from ansible_collections.fediops.mastodon.plugins.module_utils.read_replica import ReadReplicaError, fence_config


def replica_fence_config(data):
    """Return the fence's configuration of `data` (see DOCUMENTATION)."""
    if not isinstance(data, dict):
        raise AnsibleFilterError("replica_fence_config: the input must be a mapping, got %s" % type(data).__name__)
    try:
        return fence_config(data)
    except (ReadReplicaError, IniError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("replica_fence_config: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"replica_fence_config": replica_fence_config}
