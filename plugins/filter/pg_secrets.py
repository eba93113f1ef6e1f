# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: pg_md5
short_description: PostgreSQL's md5 secret of a password for a user name
version_added: 0.1.0
description:
  - Returns C(md5) followed by the md5 of the password and the user name, as PostgreSQL and PgBouncer store it.
  - The other filters of this file are C(pg_scram_sha256) and C(pg_secret_verifies).
positional: name
options:
  _input:
    description: The plaintext password.
    type: str
    required: true
  name:
    description: The user name.
    type: str
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: The guide's userlist.txt example
  ansible.builtin.debug:
    msg: "{{ 'password' | fediops.mastodon.pg_md5('mastodon') }}"  # md5d75bb2be2d7086c6148944261a00f605

- name: A SCRAM secret with a fixed salt (for a reproducible value), and a check of an existing secret
  ansible.builtin.set_fact:
    secret: "{{ db_password | fediops.mastodon.pg_scram_sha256(salt='c2FsdHNhbHRzYWx0') }}"
    still_good: "{{ stored_secret | fediops.mastodon.pg_secret_verifies('mastodon', db_password) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The secret, C(md5) and 32 hex digits; C(pg_scram_sha256) returns C(SCRAM-SHA-256$...).
  type: str
"""

import base64

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.pg_secrets import (
    SCRAM_ITERATIONS,
    SecretError,
    md5_secret,
    scram_secret,
    secret_type,
    verify,
)


def pg_md5(password, name):
    try:
        return md5_secret(name, password)
    except SecretError as exc:
        raise AnsibleFilterError("pg_md5: %s" % exc)


def pg_scram_sha256(password, salt=None, iterations=SCRAM_ITERATIONS):
    """`salt` is base64 (as in the secret); omitted, a random one is drawn."""
    try:
        raw_salt = base64.b64decode(salt, validate=True) if salt else None
        return scram_secret(password, salt=raw_salt, iterations=int(iterations))
    except (SecretError, ValueError) as exc:
        raise AnsibleFilterError("pg_scram_sha256: %s" % exc)


def pg_secret_verifies(secret, name, password, auth_type=None):
    """True when `secret` lets `name` log in with `password` (and is of `auth_type`, when given)."""
    if not secret:
        return False
    if auth_type is not None and secret_type(secret) != auth_type:
        return False
    return verify(name, password, secret)


class FilterModule(object):
    def filters(self):
        return {
            "pg_md5": pg_md5,
            "pg_scram_sha256": pg_scram_sha256,
            "pg_secret_verifies": pg_secret_verifies,
        }
