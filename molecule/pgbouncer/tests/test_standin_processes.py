"""Mastodon's processes on the stand-in really reach PostgreSQL through PgBouncer.

Each running process (Puma's web worker, the Sidekiq process, the streaming server) reports a real
pooled connection: the client end's local port, which PgBouncer's SHOW CLIENTS must list, and the
server end's port, which must be PostgreSQL's own 5432 behind PgBouncer. They read this round's
password from .env.production with Ruby's and npm's dotenv, so its quotes, $, \\, # and non-ASCII
letters must survive both readers.
"""

import os
import shlex
import sys

import pytest

from conftest import ADMIN_PASSWORD, psql, run_ok

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from standin_report import http_report, oneoff_report, sidekiq_report  # noqa: E402

# vars/test_secrets.yml leaves these at the role's defaults.
DEFAULT_POOL_SIZE = 20
RESERVE_POOL_SIZE = 5


def pgbouncer_clients(host):
    """(addr, port) of every client PgBouncer holds for mastodon_production."""
    out = run_ok(host, f"PGPASSWORD={shlex.quote(ADMIN_PASSWORD)} psql -X -A -q -P footer=off "
                       "-h 127.0.0.1 -p 6432 -U pgbouncer pgbouncer -c 'SHOW CLIENTS'")
    header, *rows = [line.split("|") for line in out.splitlines() if "|" in line]
    found = set()
    for row in rows:
        record = dict(zip(header, row))
        if record.get("database") == "mastodon_production":
            found.add((record["addr"], int(record["port"])))
    return found


@pytest.fixture(scope="module")
def reports(host):
    return {
        "web": http_report(host, 3000),
        "sidekiq": sidekiq_report(host, "default"),
        "streaming": http_report(host, 4000),
    }


@pytest.mark.parametrize("kind", ["web", "sidekiq", "streaming"])
def test_process_logs_in_through_pgbouncer(host, reports, kind):
    primary = reports[kind]["primary"]
    assert primary["ok"], f"{kind} could not query: {primary.get('error')}"
    assert primary["port"] == 6432, f"{kind} is configured for port {primary['port']}"
    # The server end of the connection is PostgreSQL itself, reached by PgBouncer.
    assert primary["server_port"] == 5432
    assert primary["in_recovery"] is False
    assert primary["local_port"], f"{kind} did not connect over TCP"


@pytest.mark.parametrize("kind", ["web", "sidekiq", "streaming"])
def test_pgbouncer_lists_the_process_connection(host, reports, kind):
    clients = pgbouncer_clients(host)
    local_port = reports[kind]["primary"]["local_port"]
    assert ("127.0.0.1", local_port) in clients, f"{kind}'s connection (port {local_port}) is not among {clients}"


def test_rails_processes_run_without_prepared_statements(reports):
    assert reports["web"]["primary"]["prepared_statements"] is False
    assert reports["sidekiq"]["primary"]["prepared_statements"] is False


def test_postgresql_server_connections_stay_within_the_pools(host, reports):
    out = run_ok(host, "runuser -u postgres -- psql -X -A -t -q -c \"SELECT count(*) FROM pg_stat_activity "
                       "WHERE usename = 'mastodon' AND backend_type = 'client backend'\"")
    assert int(out.strip()) <= DEFAULT_POOL_SIZE + RESERVE_POOL_SIZE


@pytest.mark.parametrize("kind", ["web", "streaming"])
def test_a_wrong_password_makes_the_fixture_report_a_failed_login(host, kind):
    report = oneoff_report(host, kind, {"DB_PASS": "not-the-password"})
    assert report["primary"]["ok"] is False
    assert "password authentication failed" in report["primary"]["error"] or "auth" in report["primary"]["error"]
    assert psql(host, "SELECT 1").rc == 0
