from __future__ import annotations

import io

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import redis_wire


def test_encode():
    assert redis_wire.encode(["LINDEX", "queue:push", -1]) == b"*3\r\n$6\r\nLINDEX\r\n$10\r\nqueue:push\r\n$2\r\n-1\r\n"


@pytest.mark.parametrize("raw, expected", [
    (b"+OK\r\n", "OK"),
    (b":42\r\n", 42),
    (b"$5\r\nhe\r\nl\r\n", "he\r\nl"),
    (b"$-1\r\n", None),
    (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", ["a", [1]]),
    (b"*-1\r\n", None),
])
def test_replies(raw, expected):
    assert redis_wire.Reader(io.BytesIO(raw)).reply() == expected


def test_errors_and_cut_replies():
    with pytest.raises(redis_wire.RedisError, match="WRONGPASS"):
        redis_wire.Reader(io.BytesIO(b"-WRONGPASS invalid\r\n")).reply()
    with pytest.raises(redis_wire.RedisError, match="closed"):
        redis_wire.Reader(io.BytesIO(b":1")).reply()


def test_unreachable_server_names_the_address():
    with pytest.raises(redis_wire.RedisError, match="127.0.0.1:1"):
        redis_wire.Connection("127.0.0.1", 1, timeout=1)
