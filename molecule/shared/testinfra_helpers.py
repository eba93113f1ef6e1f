"""Helpers every scenario's testinfra tests share (imported after putting molecule/shared on sys.path)."""

from __future__ import annotations

import os
from urllib.parse import quote


def run_ok(host, cmd):
    """Run `cmd` on the host; fail the test with its output unless it exits 0. Returns stdout."""
    res = host.run(cmd)
    assert res.rc == 0, f"{cmd!r} failed ({res.rc}): {res.stdout} {res.stderr}"
    return res.stdout


def secret_forms(secret):
    """The forms a secret takes in the files and commands the roles write: as is, URL-encoded (in a
    DATABASE_URL), backslash-escaped (.env, .pgpass), with doubled quotes (SQL), and .pgpass-escaped."""
    return {secret, quote(secret, safe=""), secret.replace("\\", "\\\\"), secret.replace("'", "''"),
            secret.replace("\\", "\\\\").replace(":", "\\:")}


def assert_no_secret_in_log(path, secrets, marker):
    """No form of any secret is in the log at `path`; `marker` proves the log is the real one."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    assert marker in log, f"{os.path.basename(path)} does not show {marker!r}: the check would prove nothing"
    for number, secret in enumerate(secrets):
        for form in secret_forms(secret):
            # The message names the secret by its place in the list, never by its text.
            assert form not in log, f"secret #{number} is in {path}"
