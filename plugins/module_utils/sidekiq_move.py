# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving Sidekiq's jobs from one Redis to another, as functions over two connections.

Sidekiq keeps its work in a few keys: the set `queues` (the queue names), one list `queue:NAME` per
queue (pushed on the left, taken from the right, so the oldest job is at the right end), and the sorted
sets `schedule`, `retry` and `dead` (scored by time). A move runs once no process writes to the source
any more: every process was restarted onto the target, and a process that stopped pushed its unfinished
jobs back to the source as it went.

Each key is first renamed in the source to a key of its own (`fediops:moving:KEY`), atomically, so a late
writer starts a new key rather than losing one. The renamed key is copied to the target and only then
deleted. A move that stops midway leaves that key behind, and the next move copies it first: a job may
then run twice, but none is lost. Sorted sets copy without duplicates (ZADD of the same member).

Two moves must never run at once: the second would delete the first one's renamed key, and jobs a late
writer pushed in between with it. So a move first takes a lock in the target and in the source (`SET ... NX
PX`), renews it before every chunk it copies, and stops if it lost it; a second move waits for the lock, then
moves what is left, or stops with a message when the first one takes too long.

`source` and `target` are objects with call(*args) returning Redis's reply (redis_wire.Connection with
raw=True: payloads are copied byte for byte).
"""

from __future__ import annotations

import secrets
import time

MOVING_PREFIX = "fediops:moving:"
SORTED_SETS = ("schedule", "retry", "dead")
QUEUES_SET = "queues"
# Items read and written per command: a queue of a million jobs moves in a thousand round trips.
CHUNK = 1000
# The lock each move holds in both Redis servers. It expires by itself if the move dies, and is renewed
# before every chunk, which takes milliseconds.
LOCK_KEY = "fediops:sidekiq-move:lock"
LOCK_TTL_MS = 30000
# Renew or release only a lock this move still holds (a script, so that the check and the change are one step).
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


class MoveError(RuntimeError):
    """A move that must not start, or a Redis reply it cannot use."""


def text(value):
    """A reply as str (raw connections return bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def info_fields(reply):
    """{field: value} of an INFO reply."""
    fields = {}
    for line in text(reply or "").splitlines():
        if ":" in line and not line.startswith("#"):
            name, _sep, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return fields


def server_id(conn, db):
    """Which server and database a connection reaches: (run_id, db)."""
    return info_fields(conn.call("INFO", "server")).get("run_id"), int(db or 0)


def target_problems(target):
    """Why the target must not take Sidekiq's jobs: an eviction policy that can drop them."""
    policy = info_fields(target.call("INFO", "memory")).get("maxmemory_policy", "")
    if policy and policy != "noeviction":
        return ["the Redis Sidekiq now uses evicts keys (maxmemory-policy %s): it could drop the jobs moved into "
                "it. Give it noeviction first." % policy]
    return []


class MoveLock:
    """The lock of one move in one Redis (the source or the target)."""

    def __init__(self, conn, label, token, wait_s=60.0, sleep=time.sleep, clock=time.monotonic):
        self.conn, self.label, self.token, self.wait_s = conn, label, token, wait_s
        self.sleep, self.clock = sleep, clock
        self.held = False

    def acquire(self):
        deadline = self.clock() + self.wait_s
        while True:
            if self.conn.call("SET", LOCK_KEY, self.token, "NX", "PX", LOCK_TTL_MS) is not None:
                self.held = True
                return
            if self.clock() >= deadline:
                raise MoveError("another move of Sidekiq's jobs into or out of %s has held its lock (%s) for over %d s; "
                                "nothing was moved by this run. Let that move end, then run again."
                                % (self.label, LOCK_KEY, self.wait_s))
            self.sleep(0.2)

    def renew(self):
        if int(self.conn.call("EVAL", _RENEW, 1, LOCK_KEY, self.token, LOCK_TTL_MS) or 0) != 1:
            self.held = False
            raise MoveError("this move lost its lock on %s (%s): another move may have started. It stopped; jobs it "
                            "renamed are copied by the next move, none is lost." % (self.label, LOCK_KEY))

    def release(self):
        if self.held:
            self.held = False
            self.conn.call("EVAL", _RELEASE, 1, LOCK_KEY, self.token)


def scan(conn, pattern):
    """Every key matching `pattern`, sorted (SCAN, so a large Redis is not blocked)."""
    cursor, keys = "0", set()
    while True:
        reply = conn.call("SCAN", cursor, "MATCH", pattern, "COUNT", CHUNK)
        cursor = text(reply[0])
        keys.update(text(key) for key in reply[1] or [])
        if cursor == "0":
            return sorted(keys)


def queue_names(source):
    """Queue names of the source, sorted: its `queues` set, and every `queue:NAME` list and moving copy.

    The set alone is not enough: a Sidekiq process that stops pushes its unfinished jobs back with RPUSH
    and no SADD, so a queue whose name left the set can still hold jobs.
    """
    names = set(text(name) for name in (source.call("SMEMBERS", QUEUES_SET) or []))
    # One pass over the keyspace (the main Redis holds every home feed) for both kinds of key.
    for key in scan(source, "*queue:*"):
        for prefix in ("queue:", MOVING_PREFIX + "queue:"):
            if key.startswith(prefix) and text(source.call("TYPE", key)) == "list":
                names.add(key[len(prefix):])
    return sorted(names)


def restore_leftovers(conn):
    """Put back the moving copies an interrupted move in the other direction left in `conn`: their jobs go
    onto the key they came from (oldest still first); returns {key: jobs}. A move copies jobs out of a
    moving key only on its source side, so without this they would sit in the target, read by no one."""
    restored = {}
    for moving in scan(conn, MOVING_PREFIX + "*"):
        key = moving[len(MOVING_PREFIX):]
        kind = text(conn.call("TYPE", moving))
        if kind not in ("list", "zset"):
            continue
        count = (_copy_list if kind == "list" else _copy_zset)(conn, conn, moving, key)
        conn.call("DEL", moving)
        if kind == "list" and key.startswith("queue:"):
            conn.call("SADD", QUEUES_SET, key[len("queue:"):])
        restored[key] = restored.get(key, 0) + count
    return restored


def keys_to_move(names):
    """The list keys, then the sorted sets: [(key, kind)]."""
    return [("queue:" + name, "list") for name in names] + [(key, "zset") for key in SORTED_SETS]


def size(conn, key, kind):
    return int(conn.call("LLEN" if kind == "list" else "ZCARD", key) or 0)


def pending(source, names=None):
    """What a move would carry: {key: jobs}, for the keys that hold any (the key and its moving copy)."""
    names = queue_names(source) if names is None else names
    found = {}
    for key, kind in keys_to_move(names):
        count = size(source, key, kind) + size(source, MOVING_PREFIX + key, kind)
        if count:
            found[key] = count
    return found


def _no_renew():
    return None


def _copy_list(source, target, moving, key, renew=_no_renew):
    """Append the source list to the target list's right end, keeping its order: LRANGE reads newest to
    oldest, so pushing each chunk on the right leaves the oldest job rightmost, the next one Sidekiq takes."""
    copied, start = 0, 0
    while True:
        renew()
        items = source.call("LRANGE", moving, start, start + CHUNK - 1) or []
        if not items:
            return copied
        target.call("RPUSH", key, *items)
        copied += len(items)
        start += len(items)


def _copy_zset(source, target, moving, key, renew=_no_renew):
    copied, start = 0, 0
    while True:
        renew()
        flat = source.call("ZRANGE", moving, start, start + CHUNK - 1, "WITHSCORES") or []
        if not flat:
            return copied
        members = flat[0::2]
        scores = flat[1::2]
        args = []
        for member, score in zip(members, scores):
            args.extend([score, member])
        target.call("ZADD", key, *args)
        copied += len(members)
        start += len(members)


def move_key(source, target, key, kind, renew=_no_renew):
    """Move one key: a copy left by an earlier, interrupted move first, then the key itself. `renew` is called
    before every chunk and before each delete: it raises when this move no longer holds its locks."""
    moving = MOVING_PREFIX + key
    copy = _copy_list if kind == "list" else _copy_zset
    moved = 0
    if int(source.call("EXISTS", moving) or 0):
        moved += copy(source, target, moving, key, renew)
        renew()
        source.call("DEL", moving)
    if int(source.call("EXISTS", key) or 0):
        renew()
        # RENAMENX: the moving key was just deleted, so this only fails if a second move runs at once.
        if not int(source.call("RENAMENX", key, moving) or 0):
            raise MoveError("%s is being moved by another run at the same time; run one move at a time" % key)
        moved += copy(source, target, moving, key, renew)
        renew()
        source.call("DEL", moving)
    return moved


def move(source, target, check_mode=False, lock_wait_s=60.0, labels=("the source", "the target")):
    """Move every queue, schedule, retry and dead job from source to target.

    Returns {jobs: {key: jobs moved}, queues: [names moved]} (what would move, in check mode). The queue
    names are added to the target's `queues` set before their jobs arrive, and leave the source's only
    after every key was moved. The move holds a lock in both servers from start to end (see MoveLock);
    `labels` name them in messages.
    """
    if check_mode:
        names = queue_names(source)
        return {"jobs": pending(source, names), "queues": names}
    token = secrets.token_hex(16)
    locks = [MoveLock(target, labels[1], token, lock_wait_s), MoveLock(source, labels[0], token, lock_wait_s)]
    try:
        for lock in locks:
            lock.acquire()
        return _move_locked(source, target, lambda: [lock.renew() for lock in locks])
    finally:
        for lock in locks:
            lock.release()


def _move_locked(source, target, renew):
    # Read only once the locks are held: a move that ran meanwhile has changed what is there.
    names = queue_names(source)
    found = pending(source, names)
    if not found and not names and not scan(target, MOVING_PREFIX + "*"):
        return {"jobs": found, "queues": names}
    if names:
        target.call("SADD", QUEUES_SET, *names)
    moved = {}
    for key, kind in keys_to_move(names):
        count = move_key(source, target, key, kind, renew)
        if count:
            moved[key] = count
    # Last: those jobs are older than any moved now, so they go to the end Sidekiq takes first.
    for key, count in restore_leftovers(target).items():
        moved[key] = moved.get(key, 0) + count
    # A name leaves the source's set only when nothing of its queue is left there.
    gone = [name for name in names
            if not int(source.call("EXISTS", "queue:" + name) or 0)
            and not int(source.call("EXISTS", MOVING_PREFIX + "queue:" + name) or 0)]
    if gone:
        source.call("SREM", QUEUES_SET, *gone)
    return {"jobs": moved, "queues": names}
