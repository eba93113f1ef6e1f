# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: read_replica_plan
short_description: Work out one host's part of a PostgreSQL read replica for Mastodon
version_added: 0.1.0
description:
  - Checks the inventory (one primary, replicas in the play, valid slot names), the Mastodon version
    against the mode, and whether a replica's data directory may be replaced, and renders Mastodon's
    configuration for the app hosts (REPLICA_DB_* for 4.2 and later, a Makara C(database.yml) up to 4.1).
  - With C(replication), also the replication user's SQL (with a SCRAM secret, never the password), its
    C(.pgpass) lines and the replica's C(primary_conninfo).
  - Does not fail on a bad setup; read RV(_value.problems). The role asserts on it before any change.
    Only the later steps, run when there are no problems, fail on input they cannot use (a missing key,
    an empty or unusable replication password).
options:
  _input:
    description:
      - A mapping with C(mastodon_version), C(mode) (V(auto), V(makara) or V(native)), C(primaries) and
        C(replicas) (host names), C(play_hosts) (the play's host names), C(hosts) (per host C(address),
        C(port), C(slot)), C(is_app), and C(self) (this host's name).
      - Optional C(primary_group) and C(replica_group), the group names used in the sentences.
      - Optional C(replication) (C(user), C(password), C(passfile)) on the primary and the replicas.
      - Optional C(app) (C(db_user), C(db_password), C(db_name), C(via_pgbouncer), C(pgbouncer_host),
        C(pgbouncer_port), C(pgbouncer_primary_db), C(pgbouncer_replica_db), C(prepared_statements),
        C(db_tasks), C(fence)) and C(database_yml) (the current file's text) on application hosts.
      - Optional C(replica_state) (C(data_directory), C(has_database), C(is_standby), C(has_user_data),
        C(system_identifier), C(primary_system_identifier)) on a replica, and C(force_rebasebackup).
    type: dict
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Stop before any change when the setup cannot work
  vars:
    plan: >-
      {{ {'mastodon_version': '4.3.2', 'mode': 'auto', 'primaries': ['db1'], 'replicas': ['db2'],
          'play_hosts': ansible_play_hosts_all, 'hosts': {}, 'is_app': false}
         | fediops.mastodon.read_replica_plan }}
  ansible.builtin.assert:
    that: plan.problems | length == 0
    fail_msg: "{{ plan.problems | join(' ') }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    problems:
      description: Sentences naming what is wrong and what to change; empty when the setup can work.
      type: list
      elements: str
    mode:
      description: V(makara) (Mastodon 4.1 and older) or V(native) (4.2 and later).
      type: str
    slots:
      description: Replication slot name per replica host.
      type: dict
    master_url:
      description: URL of the primary as the app host reaches it (directly or through PgBouncer).
      type: str
    replica_urls:
      description: URLs of the replicas as the app host reaches them.
      type: list
      elements: str
    env:
      description: REPLICA_DB_* settings (native mode on an app host), otherwise empty.
      type: dict
    streaming_env:
      description: DB_HOST, DB_PORT and DB_NAME that point the streaming server at the replica.
      type: dict
    streaming_environment:
      description: The same as C(KEY=value) strings, for a systemd C(Environment=) line each.
      type: list
      elements: str
    database_yml:
      description: The whole C(config/database.yml) with the Makara production section (makara mode), otherwise null.
      type: str
    basebackup:
      description: For a replica, V(keep), V(take) or V(refuse); null otherwise.
      type: str
    basebackup_reason:
      description: Why, as a sentence.
      type: str
    warnings:
      description: >-
        Sentences for a setup that works but misses a safeguard (on an application host, the replica-lag fence
        wanted without PgBouncer in front of the replica); the role prints them.
      type: list
      elements: str
    role_secret:
      description: The SCRAM secret to store as the replication user's password; only with C(replication).
      type: str
    pgpass:
      description: The replication user's C(.pgpass) lines; only with C(replication).
      type: str
    primary_conninfo:
      description: The replica's C(primary_conninfo) setting, null on the primary; only with C(replication).
      type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.read_replica import ReadReplicaError, plan


def read_replica_plan(data):
    """Return the read replica plan of `data` (see DOCUMENTATION)."""
    if not isinstance(data, dict):
        raise AnsibleFilterError("read_replica_plan: the input must be a mapping, got %s" % type(data).__name__)
    try:
        return plan(data)
    except (ReadReplicaError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("read_replica_plan: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"read_replica_plan": read_replica_plan}
