"""The replica-lag fence on the split layout (issue 30): beside db1's PgBouncer in round one, beside each application
host's in round two (scale_pgbouncer_placement: app), proven through real psql clients by
molecule/shared/replica_fence_check.py. converge.yml shortens the fence's timings; the test reads them from the
fence's own configuration on the host it checks.

The fence's check is also seen failing: with its timer stopped, a read through mastodon_replica still misses a row the
paused standby has not replayed, past the bound the check allows.
"""

import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402
from split_layout import ADMIN_PASSWORD, DB_PASSWORD, host, placement  # noqa: E402
from replica_fence_check import (  # noqa: E402
    SLACK_S, TEST_PGPASS, FenceSetup, _write_test_pgpass, check_replica_lag_fence, sql_as_postgres)

CONFIG = "/etc/pgbouncer/fediops-replica-fence.json"
TIMER = "fediops-replica-fence.timer"


PRIMARY, STANDBY = host("split-db1"), host("split-db2")


def setup():
    """The fence beside this round's PgBouncer, and psql on app1 as Mastodon's clients there: db1's PgBouncer over
    the network in round one (its hba admits the application hosts), app1's own on loopback in round two."""
    if placement() == "app":
        name, fence_host, address = "split-app1", host("split-app1"), "127.0.0.1"
    else:
        name, fence_host = "split-db1", PRIMARY
        address = run_ok(PRIMARY, "hostname -I").split()[0]
    config = json.loads(fence_host.file(CONFIG).content_string)
    return name, FenceSetup(host("split-app1"), PRIMARY, STANDBY, DB_PASSWORD, ADMIN_PASSWORD,
                            max_lag_s=config["max_lag_s"], interval_s=config["interval_s"],
                            resume_after_s=config["resume_after_s"], bouncer_host=address, fence_host=fence_host)


def test_without_its_timer_the_fence_moves_no_read():
    _name, fence = setup()
    _write_test_pgpass(fence)
    table = "fediops_fence_stopped"
    sql_as_postgres(PRIMARY, "CREATE TABLE IF NOT EXISTS %s (note text NOT NULL); ALTER TABLE %s OWNER TO mastodon"
                    % (table, table))
    run_ok(fence.fence_host, "systemctl stop %s" % TIMER)
    try:
        sql_as_postgres(STANDBY, "SELECT pg_wal_replay_pause()")
        note = "stopped-%s" % uuid.uuid4()
        fence.through_pool("INSERT INTO %s (note) VALUES ('%s')" % (table, note), dbname=fence.dbname)
        time.sleep(fence.max_lag_s + fence.interval_s + SLACK_S + 1)
        # Past the bound check_replica_lag_fence allows, the read still misses the row: that check would fail here.
        assert fence.through_pool("SELECT count(*) FROM %s WHERE note = '%s'" % (table, note)) == "0"
        assert fence.through_pool("SELECT pg_is_in_recovery()") == "t"
    finally:
        STANDBY.run("runuser -u postgres -- psql --no-psqlrc -qtAX -c 'SELECT pg_wal_replay_resume()'")
        run_ok(fence.fence_host, "systemctl start %s" % TIMER)
        fence.bouncer.run("rm -f %s" % TEST_PGPASS)


def test_a_lagging_standby_sends_replica_reads_to_the_primary_and_back():
    name, fence = setup()
    timings = check_replica_lag_fence(fence)
    print("fence timings beside %s's PgBouncer: %s" % (name, timings))
