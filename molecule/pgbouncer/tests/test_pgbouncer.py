"""The pgbouncer scenario, run after the md5 round and again after the scram-sha-256 round."""

import hashlib
import os
import re
import shlex
import sys

from conftest import (
    ADMIN_PASSWORD, CONVERGE_LOG, ENV_FILE, INI, MAX_CLIENT_CONN, PASSWORDS, PROJECT_DIR, USERLIST,
    admin, admin_sockets, ansible_playbook, auth_type, extra_units, password, pgbench, processes, psql,
    restart_pgbouncer, run_ok,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import assert_no_secret_in_log, main_pid  # noqa: E402

SECRET_RE = {"md5": r"md5[0-9a-f]{32}", "scram-sha-256": r"SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"}


def userlist(host):
    entries = {}
    for line in host.file(USERLIST).content_string.splitlines():
        match = re.match(r'^"([^"]+)" "([^"]*)"$', line)
        assert match, f"unexpected userlist.txt line: {line[:20]}..."
        entries[match.group(1)] = match.group(2)
    return entries


def pg_authid(host, role="mastodon"):
    return run_ok(host, f"runuser -u postgres -- psql -X -A -t -q -d postgres -c "
                        f"\"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'\"").strip()


def test_service_is_active_and_listens_on_loopback_6432_only(host):
    assert host.service("pgbouncer").is_running
    assert host.service("pgbouncer").is_enabled
    listening = run_ok(host, "ss -ltnH").splitlines()
    addresses = sorted({line.split()[3] for line in listening if line.split()[3].endswith(":6432")})
    assert addresses == ["127.0.0.1:6432"]
    # That socket is PgBouncer's: its admin console answers there.
    assert admin(host, "SHOW VERSION").rc == 0


def test_each_process_of_the_round_listens_on_the_one_port(host):
    """The scram-sha-256 round runs two processes (so_reuseport): two listeners on 127.0.0.1:6432, each
    process with its own admin socket; the md5 round runs one and no extra unit."""
    listeners = [line for line in run_ok(host, "ss -ltnH").splitlines() if line.split()[3] == "127.0.0.1:6432"]
    assert len(listeners) == processes(host)
    for unit in extra_units(host):
        assert host.service(unit).is_running and host.service(unit).is_enabled
    for socket in admin_sockets(host):
        res = host.run(f"PGPASSWORD={shlex.quote(ADMIN_PASSWORD)} psql -X -A -t -q -h {socket} -p 6432 -U pgbouncer "
                       "pgbouncer -c 'SHOW CONFIG'")
        assert res.rc == 0, res.stderr
        assert re.search(r"^so_reuseport\|%d\|" % (1 if processes(host) > 1 else 0), res.stdout, re.M), res.stdout
    stray = host.run("systemctl list-units --plain --no-legend --state=active 'pgbouncer-extra@*'").stdout.split()
    assert sorted(u for u in stray if u.startswith("pgbouncer-extra@")) == extra_units(host)


def test_files_are_private_and_hold_no_plaintext(host):
    users = host.file(USERLIST)
    assert (users.user, users.group, users.mode) == ("postgres", "postgres", 0o640)
    ini = host.file(INI).content_string
    assert password(host) not in ini and ADMIN_PASSWORD not in ini and "password" not in ini.lower().replace(
        "no password in this file", "")
    assert password(host) not in users.content_string and ADMIN_PASSWORD not in users.content_string
    kind = auth_type(host)
    assert kind in SECRET_RE
    entries = userlist(host)
    assert sorted(entries) == ["mastodon", "pgbouncer"]
    for secret in entries.values():
        assert re.fullmatch(SECRET_RE[kind], secret)
    assert re.search(r"^pool_mode = transaction$", ini, re.M)


def test_postgresql_holds_the_very_secret_of_userlist(host):
    assert pg_authid(host) == userlist(host)["mastodon"]


def test_pg_hba_lets_pgbouncer_in_with_this_kind_of_secret(host):
    hba = run_ok(host, "runuser -u postgres -- psql -X -A -t -q -d postgres -c 'SHOW hba_file'").strip()
    lines = [line.split() for line in host.file(hba).content_string.splitlines()
             if line.strip() and not line.startswith("#")]
    # PgBouncer reaches PostgreSQL over its Unix socket as the system user postgres: a peer line with the
    # role's map, ahead of Debian's own; loopback TCP asks for the secret kind of userlist.txt.
    assert lines[0] == ["local", "mastodon_production", "mastodon", "peer", "map=fediops_pgbouncer"]
    assert lines[1] == ["host", "mastodon_production", "mastodon", "127.0.0.1/32", auth_type(host)]
    ident = run_ok(host, "runuser -u postgres -- psql -X -A -t -q -d postgres -c 'SHOW ident_file'").strip()
    maps = [line.split() for line in host.file(ident).content_string.splitlines()
            if line.strip() and not line.startswith("#")]
    assert maps[:2] == [["fediops_pgbouncer", "postgres", "mastodon"], ["fediops_pgbouncer", "mastodon", "mastodon"]]


def test_mastodons_own_user_still_logs_in_by_peer_over_the_socket(host):
    """Debian's rule for the socket (a system user logs in as the role of its name) still holds for Mastodon's
    user, as before the role: operators' `sudo -u mastodon psql` and pg_dump keep working, with no password."""
    res = host.run("cd /tmp && runuser -u mastodon -- psql -X -w -A -t -q -h /var/run/postgresql -p 5432 "
                   "mastodon_production -c 'SELECT current_user'")
    assert res.rc == 0 and res.stdout.strip() == "mastodon", res.stderr
    # Another system user does not get in as mastodon: the map names postgres and mastodon only.
    res = host.run("cd /tmp && runuser -u nobody -- psql -X -w -A -t -q -h /var/run/postgresql -p 5432 -U mastodon "
                   "mastodon_production -c 'SELECT 1'")
    assert res.rc != 0


def test_login_with_the_right_password_works_on_a_fresh_server_connection(host):
    # A reload keeps old server connections, hiding a secret PostgreSQL would refuse: restart first,
    # then check the query ran on a server connection opened after that restart.
    restart_pgbouncer(host)
    res = psql(host, "SELECT current_user, inet_server_port(), backend_start > now() - interval '30 seconds' "
                     "FROM pg_stat_activity WHERE pid = pg_backend_pid()")
    assert res.rc == 0, res.stderr
    # No server port: PgBouncer's server connection came in on PostgreSQL's Unix socket.
    assert res.stdout.strip() == "mastodon||t"
    log = host.file("/var/log/postgresql/pgbouncer.log").content_string
    assert "wrong password type" not in log


def test_login_with_a_wrong_password_fails(host):
    res = psql(host, "SELECT 1", password="not-" + password(host))
    assert res.rc != 0
    # md5 says "password authentication failed", SCRAM "SASL authentication failed".
    assert re.search(r"(password|SASL) authentication failed", res.stderr), res.stderr


def test_admin_console_shows_transaction_pools(host):
    assert psql(host, "SELECT 1").rc == 0
    # With two processes, that login reached one of them: ask each (a pool shows once it was used).
    modes = set()
    for socket in admin_sockets(host):
        res = host.run(f"PGPASSWORD={shlex.quote(ADMIN_PASSWORD)} psql -X -A -q -P footer=off "
                       f"-h {socket} -p 6432 -U pgbouncer -d pgbouncer -c 'SHOW POOLS'")
        assert res.rc == 0, res.stderr
        header, *rows = [line.split("|") for line in res.stdout.splitlines()]
        modes |= {row[header.index("pool_mode")] for row in rows if row[header.index("database")] == "mastodon_production"}
    assert modes == {"transaction"}
    # Only the admin user may use the console.
    assert psql(host, "SHOW POOLS", user="mastodon", db="pgbouncer").rc != 0


def test_mastodon_env_points_at_pgbouncer_and_services_picked_it_up(host):
    env = host.file(ENV_FILE).content_string
    # One process: its socket. Two: TCP, which the kernel spreads over them.
    db_host = "/var/run/postgresql" if processes(host) == 1 else "127.0.0.1"
    for line in ["DB_HOST=" + db_host, "DB_PORT=6432", "DB_NAME=mastodon_production", "DB_USER=mastodon",
                 "PREPARED_STATEMENTS=false"]:
        assert re.search("^%s$" % re.escape(line), env, re.M), line
    # Each Mastodon service (re)started after the last change of its env file, so it runs with it.
    changed = int(run_ok(host, f"stat -c %Y {ENV_FILE}"))
    for unit in ("mastodon-web", "mastodon-sidekiq", "mastodon-streaming"):
        started = int(run_ok(host, f"date -d \"$(systemctl show -p ExecMainStartTimestamp --value {unit})\" +%s"))
        assert started >= changed, f"{unit} started before .env.production changed"


def test_open_file_limit_covers_max_client_conn(host):
    # The role's cap, whatever the pools need (MAX_CLIENT_CONN + 1 x (20 + 5) + 64): a pool change is a reload.
    expected = 20000
    assert MAX_CLIENT_CONN + 1 * (20 + 5) + 64 < expected
    for unit in ["pgbouncer"] + extra_units(host):
        assert run_ok(host, f"systemctl show -p LimitNOFILE --value {unit}").strip() == str(expected), unit
    limits = host.file(f"/proc/{main_pid(host, 'pgbouncer')}/limits").content_string
    assert re.search(r"^Max open files\s+%d\s+%d" % (expected, expected), limits, re.M)


def test_max_prepared_statements_only_where_supported(host):
    version = re.search(r"PgBouncer (\d+)\.(\d+)", run_ok(host, "pgbouncer --version")).groups()
    supported = tuple(int(v) for v in version) >= (1, 21)
    assert ("max_prepared_statements = 200" in host.file(INI).content_string) == supported
    codename = host.system_info.codename
    assert supported == (codename != "bookworm")


def test_300_clients_through_pgbouncer_complete_without_failures(host, pgbench_tables):
    # pgbench's -T counts the 300 logins too: long enough for them on a busy machine.
    res = host.run(pgbench(host, "-n -S -c 300 -j 2 -T 8"))
    assert res.rc == 0, res.stdout + res.stderr
    assert "number of failed transactions: 0 " in res.stdout
    processed = int(re.search(r"number of transactions actually processed: (\d+)", res.stdout).group(1))
    assert processed > 300
    assert "Too many open files" not in host.file("/var/log/postgresql/pgbouncer.log").content_string


def test_300_clients_straight_at_postgresql_cannot_connect(host, pgbench_tables):
    res = host.run(pgbench(host, "-n -S -c 300 -j 2 -T 2", port=5432))
    assert res.rc != 0
    assert re.search(r"too many clients|remaining connection slots are reserved", res.stderr)


LOAD = """
set -u
out=$(mktemp -p /var/tmp)
{bench} >"$out" 2>&1 &
bench=$!
sleep 1
{action}
wait $bench
echo "RC=$?"
cat "$out"
rm -f "$out"
"""


def test_reloads_under_writing_load_lose_nothing(host, pgbench_tables):
    before = main_pid(host, "pgbouncer")
    extras_before = [(unit, extra_pid(host, unit), sighups(host, unit)) for unit in extra_units(host)]
    action = ("for i in 1 2 3 4; do systemctl reload pgbouncer; sleep 1; done; "
              f"PGPASSWORD={ADMIN_PASSWORD!r} psql -X -q -h 127.0.0.1 -p 6432 -U pgbouncer pgbouncer -c RELOAD")
    res = host.run("bash -c %s" % shlex.quote(LOAD.format(bench=pgbench(host, "-n -c 10 -j 2 -T 6"), action=action)))
    out = res.stdout
    assert "RC=0" in out, out
    assert "number of failed transactions: 0 " in out, out
    assert "aborted" not in out, out
    assert int(re.search(r"number of transactions actually processed: (\d+)", out).group(1)) > 0
    assert main_pid(host, "pgbouncer") == before, "a reload must keep the PgBouncer process"
    for unit, pid, hups in extras_before:
        assert extra_pid(host, unit) == pid, f"{unit} was restarted by a reload"
        assert sighups(host, unit) > hups, f"{unit} was not reloaded with pgbouncer.service"


def extra_pid(host, unit):
    return run_ok(host, f"systemctl show -p MainPID --value {unit}").strip()


def sighups(host, unit):
    """How often the extra process `unit` re-read its configuration, from its own log file."""
    number = unit.split("@")[1].split(".")[0]
    return int(run_ok(host, f"grep -c 'got SIGHUP' /var/log/postgresql/pgbouncer-{number}.log || true").strip() or 0)


SPREAD = """
set -u
{bench} >/var/tmp/spread.out 2>&1 &
bench=$!
while kill -0 $bench 2>/dev/null; do
  index=0
  for socket in {sockets}; do
    echo "process $index $(PGPASSWORD={admin_password} psql -X -A -t -q -h $socket -p 6432 -U pgbouncer pgbouncer \\
      -c 'SHOW CLIENTS' | grep -c '|mastodon_production|')"
    index=$((index + 1))
  done
  sleep 0.1
done
wait $bench
echo "RC=$?"
cat /var/tmp/spread.out
"""


def test_clients_spread_over_the_processes(host, pgbench_tables):
    """With two processes, a TCP client load lands on both: each lists clients while pgbench runs.

    The sampling runs inside the container, a round every 0.1 s for as long as pgbench runs: one call
    through Ansible per sample took seconds on a busy machine and could miss the second process.
    """
    if processes(host) == 1:
        return
    script = SPREAD.format(bench=pgbench(host, "-n -S -c 40 -j 2 -T 6"), sockets=" ".join(admin_sockets(host)),
                           admin_password=shlex.quote(ADMIN_PASSWORD))
    out = run_ok(host, "bash -c %s" % shlex.quote(script))
    assert "RC=0" in out and "number of failed transactions: 0 " in out, out
    samples = [tuple(map(int, m)) for m in re.findall(r"^process (\d+) (\d+)$", out, re.M)]
    assert samples, out
    seen = {index for index, clients in samples if clients > 0}
    assert seen == set(range(processes(host))), f"clients landed on processes {seen} only: {samples}"


def test_restart_under_writing_load_aborts_every_client(host, pgbench_tables):
    action = "systemctl restart pgbouncer; systemctl reset-failed pgbouncer"
    res = host.run("bash -c %s" % shlex.quote(LOAD.format(bench=pgbench(host, "-n -c 10 -j 2 -T 6"), action=action)))
    out = res.stdout
    assert "RC=0" not in out, out
    aborted = set(re.findall(r"client (\d+) (?:script \d+ )?aborted", out))
    assert len(aborted) == 10, out
    restart_pgbouncer(host)


def test_migrate_playbook_goes_straight_to_postgresql(host, tmp_path):
    before = run_ok(host, "runuser -u postgres -- psql -X -A -t -q -d mastodon_production -c "
                          "'SELECT count(*) FROM fixture_schema_migrations'").strip()
    res = ansible_playbook(host, os.path.join(PROJECT_DIR, "playbooks", "migrate.yml"), tmp_path,
                           groups=["mastodon_app"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    rows = run_ok(host, "runuser -u postgres -- psql -X -A -t -q -d mastodon_production -c "
                        "'SELECT count(*), (array_agg(db_port ORDER BY id DESC))[1] FROM fixture_schema_migrations'")
    count, port = rows.strip().split("|")
    assert int(count) == int(before) + 1
    assert port == "5432"
    # Mastodon itself still goes through PgBouncer.
    assert re.search(r"^DB_PORT=6432$", host.file(ENV_FILE).content_string, re.M)


def test_no_secret_reaches_the_converge_log(host):
    md5s = ["md5" + hashlib.md5((password + user).encode()).hexdigest()
            for user, password in [("mastodon", p) for p in PASSWORDS.values()] + [("pgbouncer", ADMIN_PASSWORD)]]
    secrets = list(PASSWORDS.values()) + [ADMIN_PASSWORD] + md5s + list(userlist(host).values())
    assert_no_secret_in_log(CONVERGE_LOG, secrets, "fediops.mastodon.pgbouncer")
