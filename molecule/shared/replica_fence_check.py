"""The replica-lag fence (roles/read_replica, tasks_from: fence), proven by outcome through real clients.

`check_replica_lag_fence()` runs issue 30's proof on any layout whose PgBouncer serves mastodon_replica: the read
replica scenario (PgBouncer on the primary) and the split one (PgBouncer on db1 or on each application host).

1. `pg_wal_replay_pause()` on the standby, then a row inserted on the primary: a read through PgBouncer's
   mastodon_replica does not see it (the pause works, and reads were on the standby).
2. A read through mastodon_replica returns the row within read_replica_max_lag_s plus the timer's period.
3. PgBouncer's SHOW CLIENTS still lists a psql client that connected to mastodon_replica before the switch, on the
   same port, and that client's next query reads the primary.
4. After `pg_wal_replay_resume()`, mastodon_replica reads the standby again (`pg_is_in_recovery()` true) within
   read_replica_fence_resume_after_s plus two periods, and the same client reads the standby again.

Every client here is psql. Its password comes from a test-only password file (PGPASSFILE), never a command line,
so that the `ps` samples of `check_fence_keeps_its_secret()` prove the fence's own processes.
"""

from __future__ import annotations

import shlex
import time
import uuid

from testinfra_helpers import run_ok, secret_forms, wait_for

TEST_PGPASS = "/root/.fediops-fence-test.pgpass"
HELD_IN, HELD_OUT = "/run/fediops-fence-held.in", "/run/fediops-fence-held.out"
FENCE_UNIT = "fediops-replica-fence.service"
PASSFILE = "/etc/pgbouncer/fediops-replica-fence.pgpass"
# Beside the stated bound: the test's own polling (a docker exec and a psql every half second) and one run of
# the fence (python, two psql, a reload) on a busy 2-CPU machine.
SLACK_S = 3.0


class FenceSetup:
    """Where the fence's proof runs. bouncer: the testinfra host the psql clients run on, which reaches PgBouncer at
    bouncer_host:bouncer_port; fence_host: the one whose PgBouncer serves `replica_db` and runs the fence (bouncer
    unless told); primary and standby: the database hosts (SQL as postgres over their socket); the timings are the
    fence's settings on fence_host."""

    def __init__(self, bouncer, primary, standby, password, admin_password, max_lag_s, interval_s, resume_after_s,
                 bouncer_host="127.0.0.1", bouncer_port=6432, user="mastodon", dbname="mastodon_production",
                 replica_db="mastodon_replica", admin_user="pgbouncer", fence_host=None):
        self.bouncer, self.primary, self.standby = bouncer, primary, standby
        self.fence_host = fence_host or bouncer
        self.password, self.admin_password = password, admin_password
        self.max_lag_s, self.interval_s, self.resume_after_s = max_lag_s, interval_s, resume_after_s
        self.bouncer_host, self.bouncer_port, self.user = bouncer_host, bouncer_port, user
        self.dbname, self.replica_db, self.admin_user = dbname, replica_db, admin_user

    def psql_argv(self, dbname, user=None):
        return ("env PGPASSFILE=%s PGCONNECT_TIMEOUT=3 psql --no-psqlrc -w -qtAX -F '|' -h %s -p %d -U %s -d %s"
                % (TEST_PGPASS, self.bouncer_host, self.bouncer_port, user or self.user, dbname))

    def through_pool(self, query, dbname=None, check=True):
        """`query` on a new connection through PgBouncer (mastodon_replica unless told)."""
        cmd = "%s -c %s" % (self.psql_argv(dbname or self.replica_db), shlex.quote(query))
        return run_ok(self.bouncer, cmd).strip() if check else self.bouncer.run(cmd)

    def console(self, command):
        """Rows of a command on PgBouncer's admin console, as dicts by column name."""
        out = run_ok(self.bouncer, "%s -P footer=off -c %s" % (
            self.psql_argv("pgbouncer", self.admin_user).replace(" -qtAX ", " -qAX "), shlex.quote(command)))
        lines = out.splitlines()
        names = lines[0].split("|")
        return [dict(zip(names, line.split("|"))) for line in lines[1:] if line]


def sql_as_postgres(host, query, db="mastodon_production"):
    return run_ok(host, "runuser -u postgres -- psql --no-psqlrc -qtAX -v ON_ERROR_STOP=1 -d %s -c %s"
                  % (db, shlex.quote(query))).strip()


def _write_test_pgpass(setup):
    line = "".join("*:*:*:%s:%s\n" % (user, pw.replace("\\", "\\\\").replace(":", "\\:"))
                   for user, pw in ((setup.user, setup.password), (setup.admin_user, setup.admin_password)))
    run_ok(setup.bouncer, "umask 077 && printf %%s %s > %s" % (shlex.quote(line), TEST_PGPASS))


class HeldClient:
    """One psql connected to mastodon_replica through PgBouncer for the whole proof: its queries come through a
    FIFO, so it stays connected between them; its answers go to a file."""

    def __init__(self, setup):
        self.setup, self.answers = setup, 0
        host = setup.bouncer
        run_ok(host, "rm -f %s %s && mkfifo -m 600 %s" % (HELD_IN, HELD_OUT, HELD_IN))
        # A writer that keeps the FIFO open, so psql reads on until it is stopped.
        self.writer = run_ok(host, "sh -c 'sleep 600 > %s 2>/dev/null < /dev/null & echo $!'" % HELD_IN).strip()
        self.pid = run_ok(host, "sh -c %s" % shlex.quote("exec %s < %s > %s 2>&1 & echo $!" % (
            setup.psql_argv(setup.replica_db), HELD_IN, HELD_OUT))).strip()
        assert self.writer.isdigit() and self.pid.isdigit(), (self.writer, self.pid)

    def ask(self, query):
        """The held client's answer to `query` (it must still be connected)."""
        run_ok(self.setup.bouncer, "printf '%%s\\n' %s > %s" % (shlex.quote(query.rstrip(";") + ";"), HELD_IN))
        self.answers += 1
        lines = wait_for(lambda: self._lines() if len(self._lines()) >= self.answers else None, timeout=15,
                         what="the held client's answer to %s" % query)
        return lines[self.answers - 1]

    def _lines(self):
        return self.setup.bouncer.run("cat %s" % HELD_OUT).stdout.splitlines()

    def port(self):
        """The client's own TCP port, as PgBouncer sees it in SHOW CLIENTS."""
        out = run_ok(self.setup.bouncer, "ss -Htnp state established '( dport = :%d )'" % self.setup.bouncer_port)
        for line in out.splitlines():
            if "pid=%s," % self.pid in line:
                return line.split()[2].rsplit(":", 1)[1]
        raise AssertionError("the held psql client (pid %s) has no connection to PgBouncer: %s" % (self.pid, out))

    def listed(self, port):
        """SHOW CLIENTS' row of this client: on mastodon_replica, from `port`."""
        rows = [row for row in self.setup.console("SHOW CLIENTS")
                if row.get("port") == port and row.get("database") == self.setup.replica_db]
        return rows[0] if rows else None

    def close(self):
        self.setup.bouncer.run("kill %s %s; rm -f %s %s" % (self.pid, self.writer, HELD_IN, HELD_OUT))


def check_replica_lag_fence(setup, table="fediops_fence_probe", while_fenced=None):
    """Issue 30's proof on `setup` (a FenceSetup). `while_fenced`, if given, is called while reads are on the
    primary (the replay is still paused, so the fence must stay on through it). Returns the timings it saw."""
    _write_test_pgpass(setup)
    # Mastodon's role owns it, as it owns Mastodon's tables: it writes and reads it through PgBouncer below.
    sql_as_postgres(setup.primary, "CREATE TABLE IF NOT EXISTS %s (id bigserial PRIMARY KEY, note text NOT NULL); "
                                   "ALTER TABLE %s OWNER TO %s" % (table, table, setup.user))
    wait_for(lambda: setup.through_pool("SELECT to_regclass('%s') IS NOT NULL" % table) == "t", timeout=30,
             what="the probe table through %s" % setup.replica_db)
    # Before: mastodon_replica reads the standby, and the fence is off.
    wait_for(lambda: setup.through_pool("SELECT pg_is_in_recovery()") == "t",
             timeout=setup.resume_after_s + 2 * setup.interval_s + 30, what="%s to read the standby" % setup.replica_db)
    held = HeldClient(setup)
    timings = {}
    try:
        assert held.ask("SELECT pg_is_in_recovery()") == "t"
        port = held.port()
        assert held.listed(port), "SHOW CLIENTS does not list the held client on port %s" % port

        # 1. The standby stops replaying; a row goes in on the primary. Through the pool it is not there yet.
        sql_as_postgres(setup.standby, "SELECT pg_wal_replay_pause()")
        note = "fence-%s" % uuid.uuid4()
        # Written as Mastodon writes: through PgBouncer's primary entry.
        setup.through_pool("INSERT INTO %s (note) VALUES ('%s')" % (table, note), dbname=setup.dbname)
        written = time.monotonic()
        count = "SELECT count(*) FROM %s WHERE note = '%s'" % (table, note)
        assert setup.through_pool(count) == "0", "the row was read before the fence moved anything: is replay paused?"

        # 2. Within max_lag + one period, mastodon_replica reads the primary: the row is there.
        bound = setup.max_lag_s + setup.interval_s
        wait_for(lambda: setup.through_pool(count) == "1", timeout=bound + SLACK_S,
                 what="the row through %s within read_replica_max_lag_s %d + the period %d s"
                      % (setup.replica_db, setup.max_lag_s, setup.interval_s), interval=0.25)
        timings["row_read_after_s"] = round(time.monotonic() - written, 1)
        assert timings["row_read_after_s"] <= bound + SLACK_S, timings
        assert setup.through_pool("SELECT pg_is_in_recovery()") == "f"

        # 3. The client connected before the switch is still there, on the same port, and reads the primary now.
        assert held.listed(port), "the held client (port %s) is gone from SHOW CLIENTS" % port
        assert held.port() == port
        assert held.ask(count) == "1" and held.ask("SELECT pg_is_in_recovery()") == "f"
        if while_fenced:
            while_fenced()
            assert held.listed(port) and held.ask("SELECT pg_is_in_recovery()") == "f"

        # 4. Replay resumes: within resume_after + two periods, mastodon_replica reads the standby again.
        sql_as_postgres(setup.standby, "SELECT pg_wal_replay_resume()")
        resumed = time.monotonic()
        back = setup.resume_after_s + 2 * setup.interval_s
        wait_for(lambda: setup.through_pool("SELECT pg_is_in_recovery()") == "t", timeout=back + SLACK_S,
                 what="%s to read the standby again within read_replica_fence_resume_after_s %d + 2 periods of %d s"
                      % (setup.replica_db, setup.resume_after_s, setup.interval_s), interval=0.25)
        timings["standby_back_after_s"] = round(time.monotonic() - resumed, 1)
        assert timings["standby_back_after_s"] <= back + SLACK_S, timings
        # Not before the standby had kept up for resume_after_s (hysteresis).
        assert timings["standby_back_after_s"] >= setup.resume_after_s - 0.5, timings
        assert held.listed(port) and held.port() == port
        assert held.ask("SELECT pg_is_in_recovery()") == "t" and held.ask(count) == "1"
    finally:
        setup.standby.run("runuser -u postgres -- psql --no-psqlrc -qtAX -c 'SELECT pg_wal_replay_resume()'")
        held.close()
        setup.bouncer.run("rm -f %s" % TEST_PGPASS)
    # The decisions are in the journal, at notice level, and systemd's own start lines every period are not.
    journal = run_ok(setup.fence_host, "journalctl -u %s --no-pager -o cat" % FENCE_UNIT)
    assert "fence on: " in journal and "fence off: " in journal, journal[-2000:]
    assert "Starting" not in journal and "Finished" not in journal, journal[-2000:]
    return timings


def check_fence_keeps_its_secret(setup, samples=200):
    """The password the fence reads PostgreSQL with is in its root-only password file and nowhere else: not in any
    command line while it runs (sampled), not in the journal, not in a file others can read."""
    host = setup.bouncer
    passfile = host.file(PASSFILE)
    assert passfile.user == "root" and passfile.group == "root" and passfile.mode == 0o600
    # Rounds of samples until one caught the fence's own psql (a loaded machine may start it between two samples),
    # at most 30 rounds: what every sample saw is checked below.
    seen = run_ok(host, "caught=0; for i in $(seq 30); do systemctl start --no-block %s; "
                        "out=$(for j in $(seq %d); do ps -eo args; done); printf '%%s\\n' \"$out\"; "
                        "case \"$out\" in *'psql --no-psqlrc -w'*) caught=1;; esac; "
                        "[ $caught = 1 ] && [ $i -ge 5 ] && break; done; true" % (FENCE_UNIT, samples // 5))
    # The samples did catch the fence's own psql.
    assert "psql --no-psqlrc -w" in seen and "-U %s" % setup.user in seen, "no sample caught the fence's psql"
    journal = run_ok(host, "journalctl --no-pager -o cat")
    escaped = setup.password.replace("\\", "\\\\").replace(":", "\\:")
    assert run_ok(host, "grep -cF -- %s %s" % (shlex.quote(":%s:%s" % (setup.user, escaped)), PASSFILE)).strip() == "1"
    for form in secret_forms(setup.password):
        assert form not in seen, "the password is on a command line"
        assert form not in journal, "the password is in the journal"
        found = host.run("find /etc /var/lib/fediops-mastodon /usr/local/lib/fediops-mastodon -xdev -type f -perm -o+r "
                         "-print0 | xargs -0 -r grep -lF -- %s" % shlex.quote(form)).stdout.split()
        assert found == [], "others can read the password in %s" % found
