# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq_move as sm


class FakeRedis:
    """The commands a move sends, with Redis's semantics for lists, sets and sorted sets (bytes in, bytes out)."""

    def __init__(self, run_id="a", policy="noeviction"):
        self.data = {}
        self.run_id = run_id
        self.policy = policy
        self.fail_on = None
        self.calls = []

    @staticmethod
    def b(value):
        return value if isinstance(value, bytes) else str(value).encode()

    def call(self, *args):
        name = args[0].upper()
        self.calls.append(name)
        if self.fail_on and self.fail_on[0] == name:
            self.fail_on[1] -= 1
            if self.fail_on[1] < 0:
                self.fail_on = None
                raise sm.MoveError("connection lost")
        key = args[1] if len(args) > 1 else None
        rest = [self.b(a) for a in args[2:]]
        if name == "SCAN":
            import fnmatch
            pattern = args[3]
            return [b"0", sorted(k.encode() for k in self.data if fnmatch.fnmatchcase(k, pattern))]
        if name == "TYPE":
            value = self.data.get(key)
            kind = {list: "list", dict: "zset", set: "set"}.get(type(value), "none")
            return kind.encode()
        if name == "INFO":
            return ("# Server\r\nrun_id:%s\r\n# Memory\r\nmaxmemory_policy:%s\r\n" % (self.run_id, self.policy)).encode()
        if name == "SMEMBERS":
            return sorted(self.data.get(key, set()))
        if name == "SADD":
            self.data.setdefault(key, set()).update(rest)
            return len(rest)
        if name == "SREM":
            self.data.get(key, set()).difference_update(rest)
            if not self.data.get(key):
                self.data.pop(key, None)
            return len(rest)
        if name == "LLEN":
            return len(self.data.get(key, []))
        if name == "ZCARD":
            return len(self.data.get(key, {}))
        if name == "EXISTS":
            return int(key in self.data)
        if name == "DEL":
            return int(self.data.pop(key, None) is not None)
        if name == "RENAMENX":
            if key not in self.data:
                raise sm.MoveError("ERR no such key")
            new = args[2]
            if new in self.data:
                return 0
            self.data[new] = self.data.pop(key)
            return 1
        if name == "LRANGE":
            start, stop = int(args[2]), int(args[3])
            return list(self.data.get(key, [])[start:stop + 1])
        if name in ("LPUSH", "RPUSH"):
            items = self.data.setdefault(key, [])
            for item in rest:
                if name == "LPUSH":
                    items.insert(0, item)
                else:
                    items.append(item)
            return len(items)
        if name == "ZADD":
            zset = self.data.setdefault(key, {})
            for score, member in zip(rest[0::2], rest[1::2]):
                zset[member] = float(score)
            return len(rest) // 2
        if name == "ZRANGE":
            start, stop = int(args[2]), int(args[3])
            ordered = sorted(self.data.get(key, {}).items(), key=lambda kv: (kv[1], kv[0]))[start:stop + 1]
            flat = []
            for member, score in ordered:
                flat.extend([member, repr(score).encode()])
            return flat
        raise AssertionError("unexpected command %r" % (args,))


def sidekiq_push(redis, queue, payload):
    """As Sidekiq's client does: SADD queues, LPUSH queue:NAME."""
    redis.call("SADD", "queues", queue)
    redis.call("LPUSH", "queue:" + queue, payload)


def drain(redis, queue):
    """As Sidekiq's fetch does: take from the right end, oldest first."""
    items = redis.data.get("queue:" + queue, [])
    return [items.pop() for _index in range(len(items))]


def test_moved_jobs_run_before_the_jobs_already_in_the_target_in_their_own_order():
    src, dst = FakeRedis("old"), FakeRedis("new")
    for i in range(1, 2501):
        sidekiq_push(src, "default", "old-%d" % i)
    # A restarted web process already pushed two jobs to the new Redis.
    sidekiq_push(dst, "default", "new-1")
    sidekiq_push(dst, "default", "new-2")
    result = sm.move(src, dst)
    assert result == {"jobs": {"queue:default": 2500}, "queues": ["default"]}
    order = drain(dst, "default")
    # The old jobs are older, so they run first, in their own order; the new ones after.
    assert order == [b"old-%d" % i for i in range(1, 2501)] + [b"new-1", b"new-2"]
    assert "queue:default" not in src.data and "queues" not in src.data
    assert dst.data["queues"] == {b"default"}
    # Chunks of 1000: three LRANGE reads with data, one empty.
    assert src.calls.count("LRANGE") == 4


def test_move_copies_sorted_sets_with_their_scores():
    src, dst = FakeRedis("old"), FakeRedis("new")
    src.call("ZADD", "schedule", "1700000000.5", "job-a")
    src.call("ZADD", "retry", "1700000001", "job-b")
    src.call("ZADD", "dead", "1690000000", "job-c")
    dst.call("ZADD", "schedule", "1800000000", "job-z")
    result = sm.move(src, dst)
    assert result["jobs"] == {"schedule": 1, "retry": 1, "dead": 1}
    assert dst.data["schedule"] == {b"job-a": 1700000000.5, b"job-z": 1800000000.0}
    assert dst.data["retry"] == {b"job-b": 1700000001.0}
    assert not any(key in src.data for key in ("schedule", "retry", "dead"))


def test_check_mode_counts_and_moves_nothing():
    src, dst = FakeRedis("old"), FakeRedis("new")
    sidekiq_push(src, "push", "p1")
    src.call("ZADD", "schedule", "1", "s1")
    before = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in src.data.items()}
    assert sm.move(src, dst, check_mode=True) == {"jobs": {"queue:push": 1, "schedule": 1}, "queues": ["push"]}
    assert src.data == before and dst.data == {}


def test_second_move_finds_nothing():
    src, dst = FakeRedis("old"), FakeRedis("new")
    sidekiq_push(src, "default", "j1")
    sm.move(src, dst)
    assert sm.move(src, dst) == {"jobs": {}, "queues": []}


def test_an_interrupted_move_loses_nothing_and_the_next_run_finishes_it():
    src, dst = FakeRedis("old"), FakeRedis("new")
    for i in range(1, 1501):
        sidekiq_push(src, "default", "j%d" % i)
    src.call("ZADD", "retry", "5", "r1")
    # The connection to the target drops on the second RPUSH: 1000 jobs were copied, 500 were not.
    dst.fail_on = ["RPUSH", 1]
    with pytest.raises(sm.MoveError):
        sm.move(src, dst)
    # The source's list waits under its moving name; the queue name stays in the source's set.
    assert len(src.data[sm.MOVING_PREFIX + "queue:default"]) == 1500
    assert b"default" in src.data["queues"]
    # A job pushed to the source after the rename (a process not restarted yet) starts a new list.
    sidekiq_push(src, "default", "late")
    result = sm.move(src, dst)
    assert result["jobs"] == {"queue:default": 1501, "retry": 1}
    ran = drain(dst, "default")
    # Every job is there; the first 1000 twice (at least once, never lost).
    assert set(ran) == {b"j%d" % i for i in range(1, 1501)} | {b"late"}
    assert len(ran) == 2501
    assert not [k for k in src.data if k.startswith(sm.MOVING_PREFIX)]


def test_a_concurrent_move_is_refused():
    src, dst = FakeRedis("old"), FakeRedis("new")
    sidekiq_push(src, "default", "j1")
    # Another run renamed the key a moment ago and is still copying it.
    original = src.call

    def racing(*args):
        if args[0] == "RENAMENX":
            src.data[sm.MOVING_PREFIX + "queue:default"] = [b"other"]
        return original(*args)

    src.call = racing
    with pytest.raises(sm.MoveError, match="another run"):
        sm.move_key(src, dst, "queue:default", "list")


def test_target_that_evicts_is_refused():
    assert sm.target_problems(FakeRedis(policy="allkeys-lru"))[0].startswith(
        "the Redis Sidekiq now uses evicts keys (maxmemory-policy allkeys-lru)")
    assert sm.target_problems(FakeRedis(policy="noeviction")) == []


def test_server_id_tells_one_server_from_another():
    assert sm.server_id(FakeRedis("x"), 0) == ("x", 0)
    assert sm.server_id(FakeRedis("x"), 0) != sm.server_id(FakeRedis("x"), 1)


def test_pending_counts_a_moving_key_left_behind():
    src = FakeRedis("old")
    src.call("SADD", "queues", "mailers")
    src.call("RPUSH", sm.MOVING_PREFIX + "queue:mailers", "m1", "m2")
    src.call("RPUSH", "queue:mailers", "m3")
    assert sm.pending(src) == {"queue:mailers": 3}


def test_a_queue_missing_from_the_queues_set_still_moves():
    """A stopping Sidekiq pushes its unfinished jobs back with RPUSH and no SADD."""
    src, dst = FakeRedis("old"), FakeRedis("new")
    src.call("RPUSH", "queue:push", "requeued-1", "requeued-2")
    result = sm.move(src, dst)
    assert result["jobs"] == {"queue:push": 2} and result["queues"] == ["push"]
    assert drain(dst, "push") == [b"requeued-2", b"requeued-1"]
    assert "queue:push" not in src.data


def test_a_name_stays_in_the_set_while_its_queue_still_holds_jobs():
    src, dst = FakeRedis("old"), FakeRedis("new")
    sidekiq_push(src, "default", "j1")
    original = src.call

    def late_push(*args):
        # A process not restarted yet pushes again right after the key was renamed.
        reply = original(*args)
        if args[0] == "RENAMENX":
            src.data.setdefault("queue:default", []).insert(0, b"late")
        return reply

    src.call = late_push
    sm.move(src, dst)
    src.call = original
    assert src.data["queue:default"] == [b"late"] and b"default" in src.data["queues"]
    sm.move(src, dst)
    assert set(drain(dst, "default")) == {b"j1", b"late"} and "queues" not in src.data


def test_leftovers_of_a_move_the_other_way_are_put_back_first():
    # A move from `main` to `own` stopped after renaming: the jobs wait in main under the moving name.
    main, own = FakeRedis("main"), FakeRedis("own")
    main.call("RPUSH", sm.MOVING_PREFIX + "queue:default", "old-2", "old-1")
    main.call("ZADD", sm.MOVING_PREFIX + "retry", "5", "r1")
    sidekiq_push(own, "default", "new-1")
    # Now the operator moves back, from `own` to `main`.
    result = sm.move(own, main)
    assert result["jobs"] == {"queue:default": 3, "retry": 1}
    assert not [k for k in main.data if k.startswith(sm.MOVING_PREFIX)]
    assert drain(main, "default") == [b"old-1", b"old-2", b"new-1"]
    assert main.data["retry"] == {b"r1": 5.0} and b"default" in main.data["queues"]
