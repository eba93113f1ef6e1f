"""Mastodon's processes on the stand-in really reach PostgreSQL through PgBouncer, over Unix sockets.

Each running process (Puma's web worker, the Sidekiq process, the streaming server) reports a real
pooled connection and its own PID: PgBouncer's SHOW CLIENTS must list a Unix-socket client with that
PID (`remote_pid`), and the server end, seen from PostgreSQL, must be its Unix socket too (no server
address), as the role wires PgBouncer to the PostgreSQL beside it. They read this round's password
from .env.production with Ruby's and npm's dotenv, so its quotes, $, \\, # and non-ASCII letters must
survive both readers.
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
    """(addr, remote_pid) of every client PgBouncer holds for mastodon_production."""
    out = run_ok(host, f"PGPASSWORD={shlex.quote(ADMIN_PASSWORD)} psql -X -A -q -P footer=off "
                       "-h 127.0.0.1 -p 6432 -U pgbouncer pgbouncer -c 'SHOW CLIENTS'")
    header, *rows = [line.split("|") for line in out.splitlines() if "|" in line]
    found = set()
    for row in rows:
        record = dict(zip(header, row))
        if record.get("database") == "mastodon_production":
            found.add((record["addr"], int(record["remote_pid"])))
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
    assert primary["host"] == "/var/run/postgresql", f"{kind} reaches PgBouncer at {primary['host']}"
    assert primary["local_port"] is None, f"{kind} connected over TCP, not PgBouncer's socket"
    # PostgreSQL sees the server end on its Unix socket (inet_server_port() is NULL there): PgBouncer
    # reached the PostgreSQL beside it without TCP.
    assert primary["server_port"] is None and primary["server_addr"] is None, primary
    assert primary["in_recovery"] is False


@pytest.mark.parametrize("kind", ["web", "sidekiq", "streaming"])
def test_pgbouncer_lists_the_process_connection(host, reports, kind):
    clients = pgbouncer_clients(host)
    pid = reports[kind]["pid"]
    assert ("unix", pid) in clients, f"{kind} (PID {pid}) is not among PgBouncer's socket clients {clients}"


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
