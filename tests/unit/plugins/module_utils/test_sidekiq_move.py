# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving Sidekiq's jobs between two real Redis servers (Debian's redis-server on Unix sockets)."""
from __future__ import annotations

import threading

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq_move as sm
from ansible_collections.fediops.mastodon.plugins.module_utils.redis_wire import Connection


@pytest.fixture
def pair(redis_server):
    """(source, target): raw connections to two servers, as the module opens them."""
    conns = [Connection(redis_server(name), 0, raw=True) for name in ("old", "new")]
    yield conns
    for conn in conns:
        conn.close()


class Interrupted(sm.MoveError):
    pass


class Hooked:
    """A real connection whose commands pass through `hook(args)` first (to cut it, or to act in between)."""

    def __init__(self, conn, hook):
        self.conn, self.hook = conn, hook

    def call(self, *args):
        self.hook(args)
        return self.conn.call(*args)


def sidekiq_push(redis, queue, *payloads):
    """As Sidekiq's client does: SADD queues, LPUSH queue:NAME."""
    redis.call("SADD", "queues", queue)
    redis.call("LPUSH", "queue:" + queue, *payloads)


def drain(redis, queue):
    """As Sidekiq's fetch does: take from the right end, oldest first."""
    out = []
    while True:
        item = redis.call("RPOP", "queue:" + queue)
        if item is None:
            return out
        out.append(item)


def keys(redis):
    return sorted(key.decode() for key in redis.call("KEYS", "*"))


def test_moved_jobs_run_before_the_jobs_already_in_the_target_in_their_own_order(pair):
    src, dst = pair
    for i in range(1, 2501):
        sidekiq_push(src, "default", "old-%d" % i)
    # A restarted web process already pushed two jobs to the new Redis.
    sidekiq_push(dst, "default", "new-1", "new-2")
    reads = []
    result = sm.move(Hooked(src, lambda args: reads.append(args[0]) if args[0] == "LRANGE" else None), dst)
    assert result == {"jobs": {"queue:default": 2500}, "queues": ["default"]}
    # The old jobs are older, so they run first, in their own order; the new ones after.
    assert drain(dst, "default") == [b"old-%d" % i for i in range(1, 2501)] + [b"new-1", b"new-2"]
    assert keys(src) == []
    assert dst.call("SMEMBERS", "queues") == [b"default"]
    # Chunks of 1000: three LRANGE reads with data, one empty.
    assert len(reads) == 4
    # The locks are gone with the move.
    assert src.call("EXISTS", sm.LOCK_KEY) == 0 and dst.call("EXISTS", sm.LOCK_KEY) == 0


def test_move_copies_sorted_sets_with_their_scores(pair):
    src, dst = pair
    src.call("ZADD", "schedule", "1700000000.5", "job-a")
    src.call("ZADD", "retry", "1700000001", "job-b")
    src.call("ZADD", "dead", "1690000000", "job-c")
    dst.call("ZADD", "schedule", "1800000000", "job-z")
    result = sm.move(src, dst)
    assert result["jobs"] == {"schedule": 1, "retry": 1, "dead": 1}
    assert dst.call("ZRANGE", "schedule", 0, -1, "WITHSCORES") == [b"job-a", b"1700000000.5", b"job-z", b"1800000000"]
    assert dst.call("ZRANGE", "retry", 0, -1, "WITHSCORES") == [b"job-b", b"1700000001"]
    assert keys(src) == []


def test_check_mode_counts_and_moves_nothing(pair):
    src, dst = pair
    sidekiq_push(src, "push", "p1")
    src.call("ZADD", "schedule", "1", "s1")
    assert sm.move(src, dst, check_mode=True) == {"jobs": {"queue:push": 1, "schedule": 1}, "queues": ["push"]}
    assert keys(src) == ["queue:push", "queues", "schedule"] and keys(dst) == []


def test_second_move_finds_nothing(pair):
    src, dst = pair
    sidekiq_push(src, "default", "j1")
    sm.move(src, dst)
    assert sm.move(src, dst) == {"jobs": {}, "queues": []}


def test_an_interrupted_move_loses_nothing_and_the_next_run_finishes_it(pair):
    src, dst = pair
    for i in range(1, 1501):
        sidekiq_push(src, "default", "j%d" % i)
    src.call("ZADD", "retry", "5", "r1")
    pushes = []

    def cut_on_second_rpush(args):
        if args[0] == "RPUSH" and args[1] == "queue:default":
            pushes.append(1)
            if len(pushes) == 2:
                raise Interrupted("connection lost")

    # The connection to the target drops on the second RPUSH: 1000 jobs were copied, 500 were not.
    with pytest.raises(Interrupted):
        sm.move(src, Hooked(dst, cut_on_second_rpush))
    # The source's list waits under its moving name; the queue name stays in the source's set.
    assert src.call("LLEN", sm.MOVING_PREFIX + "queue:default") == 1500
    assert b"default" in src.call("SMEMBERS", "queues")
    # A job pushed to the source after the rename (a process not restarted yet) starts a new list.
    sidekiq_push(src, "default", "late")
    # The dead move's locks expire; the next run would otherwise wait for them.
    src.call("DEL", sm.LOCK_KEY)
    dst.call("DEL", sm.LOCK_KEY)
    result = sm.move(src, dst)
    assert result["jobs"] == {"queue:default": 1501, "retry": 1}
    ran = drain(dst, "default")
    # Every job is there; the first 1000 twice (at least once, never lost).
    assert set(ran) == {b"j%d" % i for i in range(1, 1501)} | {b"late"}
    assert len(ran) == 2501
    assert not [k for k in keys(src) if k.startswith(sm.MOVING_PREFIX)]


def test_two_moves_at_once_lose_no_job_when_a_late_writer_pushes_between_them(pair):
    """The interleaving an audit forced on the earlier code, which lost 1,000 of 4,000 jobs: move A renames the
    queue and copies it; a process not restarted yet pushes 1,000 late jobs; move B starts, copies A's renamed
    key, deletes it and renames the late jobs in turn; then A deletes "its" renamed key, which now holds B's
    late jobs. With the lock, B waits until A is done, then moves the late jobs."""
    src, dst = pair
    peer = [conn.sock.getpeername() for conn in pair]
    sidekiq_push(src, "default", *["early-%d" % i for i in range(3000)])
    late = ["late-%d" % i for i in range(1000)]
    a_renamed, b_renamed, a_deleted = threading.Event(), threading.Event(), threading.Event()

    class MoveA(Hooked):
        def call(self, *args):
            if args[:2] == ("DEL", sm.MOVING_PREFIX + "queue:default"):
                # Give B the time to rename the late jobs; with the lock B cannot, and this wait runs out.
                b_renamed.wait(3)
            reply = Hooked.call(self, *args)
            if args[0] == "RENAMENX" and not a_renamed.is_set():
                writer = Connection(peer[0], 0, raw=True)
                sidekiq_push(writer, "default", *late)
                writer.close()
                a_renamed.set()
            if args[0] == "DEL":
                a_deleted.set()
            return reply

    class MoveB(Hooked):
        def call(self, *args):
            reply = Hooked.call(self, *args)
            if args[0] == "RENAMENX":
                b_renamed.set()
                a_deleted.wait(3)
            return reply

    errors = []

    def run_b():
        a_renamed.wait(10)
        conns = [Connection(path, 0, raw=True) for path in peer]
        try:
            sm.move(MoveB(conns[0], lambda args: None), conns[1])
        except sm.MoveError as exc:
            errors.append(exc)
        finally:
            for conn in conns:
                conn.close()

    thread = threading.Thread(target=run_b)
    thread.start()
    sm.move(MoveA(src, lambda args: None), dst)
    thread.join(60)
    assert not thread.is_alive() and errors == []
    ran = set(drain(dst, "default"))
    assert len(ran) == 4000, "%d of 4000 jobs lost" % (4000 - len(ran))
    assert keys(src) == []


def test_a_second_move_that_cannot_get_the_lock_stops_and_moves_nothing(pair):
    src, dst = pair
    sidekiq_push(src, "default", "j1")
    dst.call("SET", sm.LOCK_KEY, "another-run", "PX", 60000)
    with pytest.raises(sm.MoveError, match="held its lock"):
        sm.move(src, dst, lock_wait_s=0.5)
    assert src.call("LLEN", "queue:default") == 1 and keys(dst) == [sm.LOCK_KEY]
    # Its own lock in the source is released as it stops.
    assert src.call("EXISTS", sm.LOCK_KEY) == 0


def test_a_move_that_lost_its_lock_stops(pair):
    src, dst = pair
    sidekiq_push(src, "default", *["j%d" % i for i in range(1500)])
    stolen = []

    def steal_after_first_chunk(args):
        if args[0] == "RPUSH" and not stolen:
            stolen.append(1)
            dst.call("SET", sm.LOCK_KEY, "someone-else", "PX", 60000)

    with pytest.raises(sm.MoveError, match="lost its lock"):
        sm.move(src, Hooked(dst, steal_after_first_chunk))
    # Nothing is lost: the renamed key waits in the source for the next move.
    assert src.call("LLEN", sm.MOVING_PREFIX + "queue:default") == 1500
    assert dst.call("GET", sm.LOCK_KEY) == b"someone-else"


def test_target_that_evicts_is_refused(redis_server):
    conn = Connection(redis_server(), 0, raw=True)
    conn.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    assert sm.target_problems(conn)[0].startswith("the Redis Sidekiq now uses evicts keys (maxmemory-policy allkeys-lru)")
    conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
    assert sm.target_problems(conn) == []
    conn.close()


def test_server_id_tells_one_server_from_another(pair):
    src, dst = pair
    assert sm.server_id(src, 0) == sm.server_id(src, 0)
    assert sm.server_id(src, 0) != sm.server_id(src, 1)
    assert sm.server_id(src, 0) != sm.server_id(dst, 0)


def test_pending_counts_a_moving_key_left_behind(pair):
    src, _dst = pair
    src.call("SADD", "queues", "mailers")
    src.call("RPUSH", sm.MOVING_PREFIX + "queue:mailers", "m1", "m2")
    src.call("RPUSH", "queue:mailers", "m3")
    assert sm.pending(src) == {"queue:mailers": 3}


def test_a_queue_missing_from_the_queues_set_still_moves(pair):
    """A stopping Sidekiq pushes its unfinished jobs back with RPUSH and no SADD."""
    src, dst = pair
    src.call("RPUSH", "queue:push", "requeued-1", "requeued-2")
    result = sm.move(src, dst)
    assert result["jobs"] == {"queue:push": 2} and result["queues"] == ["push"]
    assert drain(dst, "push") == [b"requeued-2", b"requeued-1"]
    assert keys(src) == []


def test_a_name_stays_in_the_set_while_its_queue_still_holds_jobs(pair):
    src, dst = pair
    sidekiq_push(src, "default", "j1")

    class LatePush(Hooked):
        def call(self, *args):
            reply = Hooked.call(self, *args)
            if args[0] == "RENAMENX":
                # A process not restarted yet pushes again right after the key was renamed.
                self.conn.call("LPUSH", "queue:default", "late")
            return reply

    sm.move(LatePush(src, lambda args: None), dst)
    assert src.call("LRANGE", "queue:default", 0, -1) == [b"late"] and b"default" in src.call("SMEMBERS", "queues")
    sm.move(src, dst)
    assert set(drain(dst, "default")) == {b"j1", b"late"} and keys(src) == []


def test_leftovers_of_a_move_the_other_way_are_put_back_first(pair):
    # A move from `main` to `own` stopped after renaming: the jobs wait in main under the moving name.
    own, main = pair
    main.call("RPUSH", sm.MOVING_PREFIX + "queue:default", "old-2", "old-1")
    main.call("ZADD", sm.MOVING_PREFIX + "retry", "5", "r1")
    sidekiq_push(own, "default", "new-1")
    # Now the operator moves back, from `own` to `main`.
    result = sm.move(own, main)
    assert result["jobs"] == {"queue:default": 3, "retry": 1}
    assert not [k for k in keys(main) if k.startswith(sm.MOVING_PREFIX)]
    assert drain(main, "default") == [b"old-1", b"old-2", b"new-1"]
    assert main.call("ZRANGE", "retry", 0, -1, "WITHSCORES") == [b"r1", b"5"] and b"default" in main.call("SMEMBERS", "queues")
