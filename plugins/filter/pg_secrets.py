# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters pg_md5, pg_scram_sha256 and pg_secret_verifies; their logic is in plugins/module_utils/pg_secrets.py.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

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
