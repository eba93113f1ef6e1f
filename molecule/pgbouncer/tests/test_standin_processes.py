"""Mastodon's processes on the stand-in really reach PostgreSQL through PgBouncer.

Each running process (Puma's web worker, the Sidekiq process, the streaming server) reports a real
pooled connection and its own PID. With one PgBouncer process (the md5 round) they connect over its
Unix socket: SHOW CLIENTS must list a socket client with that PID (`remote_pid`). With two processes
sharing the port (the scram-sha-256 round, so_reuseport) they connect over TCP, which the kernel
spreads over the processes: one process's SHOW CLIENTS must list the client end's port. Either way the
server end, seen from PostgreSQL, is its Unix socket (no server address): the role wires PgBouncer to
the PostgreSQL beside it. They read this round's password from .env.production with Ruby's and npm's
dotenv, so its quotes, $, \\, # and non-ASCII letters must survive both readers.
"""

import os
import sys

import pytest

from conftest import processes, psql, run_ok, show_clients

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from standin_report import http_report, oneoff_report, sidekiq_report  # noqa: E402

# vars/test_secrets.yml leaves these at the role's defaults.
DEFAULT_POOL_SIZE = 20
RESERVE_POOL_SIZE = 5


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
    if processes(host) == 1:
        assert primary["host"] == "/var/run/postgresql", f"{kind} reaches PgBouncer at {primary['host']}"
        assert primary["local_port"] is None, f"{kind} connected over TCP, not PgBouncer's socket"
    else:
        assert primary["host"] == "127.0.0.1", f"{kind} reaches PgBouncer at {primary['host']}"
        assert primary["local_port"], f"{kind} did not connect over TCP"
    # PostgreSQL sees the server end on its Unix socket (inet_server_port() is NULL there): PgBouncer
    # reached the PostgreSQL beside it without TCP.
    assert primary["server_port"] is None and primary["server_addr"] is None, primary
    assert primary["in_recovery"] is False


@pytest.mark.parametrize("kind", ["web", "sidekiq", "streaming"])
def test_pgbouncer_lists_the_process_connection(host, reports, kind):
    clients = [c for c in show_clients(host) if c["database"] == "mastodon_production"]
    report = reports[kind]
    if processes(host) == 1:
        found = [c for c in clients if (c["addr"], int(c["remote_pid"])) == ("unix", report["pid"])]
    else:
        found = [c for c in clients if (c["addr"], int(c["port"])) == ("127.0.0.1", report["primary"]["local_port"])]
    assert len(found) == 1, f"{kind} (PID {report['pid']}) is not among PgBouncer's clients {clients}"


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
