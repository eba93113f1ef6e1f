"""Shared helpers for the pgbouncer scenario: real psql, pgbench and ansible-playbook runs."""

import os
import re
import shlex
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
CONVERGE_LOG = os.path.join(EPHEMERAL, "ansible.log")
SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIR = os.path.dirname(os.path.dirname(SCENARIO_DIR))
# The scenario's values (molecule.yml), repeated so that the tests do not trust the role's code.
# The Mastodon database password of each round (vars/test_secrets.yml).
PASSWORDS = {"md5": "p'a$b\"c\\d \u00e9t\u00e9", "scram-sha-256": "Mast0don #pw \"x\" $y \\z \u00fcber"}
ADMIN_PASSWORD = "Adm1n:pgb%secret"
# PgBouncer processes of each round (converge.yml): the scram-sha-256 round runs two with so_reuseport.
PROCESSES = {"md5": 1, "scram-sha-256": 2}
MAX_CLIENT_CONN = 1000
INI = "/etc/pgbouncer/pgbouncer.ini"
USERLIST = "/etc/pgbouncer/userlist.txt"
ENV_FILE = "/home/mastodon/live/.env.production"


def auth_type(host):
    match = re.search(r"^auth_type = (\S+)$", host.file(INI).content_string, re.M)
    assert match, "pgbouncer.ini has no auth_type"
    return match.group(1)


def password(host):
    """This round's Mastodon database password."""
    return PASSWORDS[auth_type(host)]


def psql(host, sql, password=None, port=6432, user="mastodon", db="mastodon_production"):
    """psql over TCP to 127.0.0.1; the password travels in PGPASSWORD, never on the command line."""
    password = PASSWORDS[auth_type(host)] if password is None else password
    return host.run(f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=10 psql -X -A -t -q -v ON_ERROR_STOP=1 "
                    f"-h 127.0.0.1 -p {port} -U {user} -d {db} -c {shlex.quote(sql)}")


def admin(host, command):
    return psql(host, command, password=ADMIN_PASSWORD, user="pgbouncer", db="pgbouncer")


def pgbench(host, args, port=6432):
    password = PASSWORDS[auth_type(host)]
    return (f"PGPASSWORD={shlex.quote(password)} pgbench -h 127.0.0.1 -p {port} -U mastodon {args} "
            f"mastodon_production")


def processes(host):
    """How many PgBouncer processes this round runs."""
    return PROCESSES[auth_type(host)]


def extra_units(host):
    """pgbouncer-extra@N.service of this round's processes beyond the first."""
    return [f"pgbouncer-extra@{n}.service" for n in range(2, processes(host) + 1)]


def admin_sockets(host):
    """The socket directory of each process's admin console: pgbouncer.service's, then the extras'."""
    return ["/var/run/postgresql"] + [f"/run/postgresql/pgbouncer-{n}" for n in range(2, processes(host) + 1)]


def show_clients(host):
    """SHOW CLIENTS of every process, each row with the index of its process."""
    rows = []
    for index, socket in enumerate(admin_sockets(host)):
        out = run_ok(host, f"PGPASSWORD={shlex.quote(ADMIN_PASSWORD)} psql -X -A -q -P footer=off "
                           f"-h {socket} -p 6432 -U pgbouncer pgbouncer -c 'SHOW CLIENTS'")
        header, *lines = [line.split("|") for line in out.splitlines() if "|" in line]
        rows += [dict(zip(header, line), process=index) for line in lines]
    return rows


def restart_pgbouncer(host):
    """A restart, clearing systemd's start-limit counter so that later restarts are not refused."""
    run_ok(host, "systemctl restart pgbouncer && systemctl reset-failed 'pgbouncer*'; "
                 f"for i in $(seq 50); do [ $(ss -ltnH | grep -c '127.0.0.1:6432 ') -eq {processes(host)} ] && exit 0; "
                 "sleep 0.2; done; exit 1")


def inventory():
    return os.environ.get("MOLECULE_INVENTORY_FILE") or os.path.join(EPHEMERAL, "inventory")


def ansible_playbook(host, playbook, tmp_path, groups=(), extra_vars=None):
    """Run a playbook against this scenario's container, logging into the converge log too."""
    hostname = host.backend.get_hostname()
    extra = tmp_path / "groups.ini"
    extra.write_text("".join(f"[{group}]\n{hostname}\n" for group in groups) or "\n")
    cmd = ["ansible-playbook", "-i", inventory(), "-i", str(extra), "--limit", hostname, playbook]
    if extra_vars:
        import json
        cmd += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_LOG_PATH=CONVERGE_LOG, ANSIBLE_ROLES_PATH=os.path.join(PROJECT_DIR, "roles"))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT_DIR, timeout=600, check=False)


@pytest.fixture(scope="module")
def pgbench_tables(host):
    """pgbench's TPC-B tables in mastodon_production, made straight through PostgreSQL."""
    run_ok(host, pgbench(host, "-i -q -s 1", port=5432))
