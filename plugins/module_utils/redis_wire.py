# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Redis connection that speaks RESP2 over TCP or a Unix socket, for readers that send many small
commands (the doctor samples a dozen every second): one connection instead of a redis-cli process per
command, and the password travels in AUTH, never on a command line. Replies: bulk strings as str,
integers as int, arrays as lists, errors raised as RedisError."""

from __future__ import annotations

import socket


class RedisError(RuntimeError):
    """An error reply, or a server that cannot be reached."""


def encode(args):
    """A command as RESP2 bytes."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Reader:
    """Reads replies from a file-like object with readline() and read(n)."""

    def __init__(self, stream, raw=False):
        self.stream = stream
        # raw: bulk strings as bytes, unchanged (a job payload copied byte for byte).
        self.raw = raw

    def reply(self):
        line = self.stream.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError("the connection closed mid-reply")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode("utf-8", "replace")
        if kind == b"-":
            raise RedisError(body.decode("utf-8", "replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            if size < 0:
                return None
            data = self.stream.read(size + 2)
            return data[:-2] if self.raw else data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            size = int(body)
            return None if size < 0 else [self.reply() for index in range(size)]
        raise RedisError("unexpected reply %r" % line[:40])


class Connection:
    """One connection: host is an address or a socket path (port 0)."""

    def __init__(self, host, port, password="", db=0, timeout=5.0, raw=False):
        try:
            if port == 0 or host.startswith("/"):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(host)
            else:
                self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise RedisError("cannot reach Redis at %s:%s: %s" % (host, port, exc)) from None
        self.reader = Reader(self.sock.makefile("rb"), raw)
        if password:
            self.call("AUTH", password)
        if db:
            self.call("SELECT", db)

    def call(self, *args):
        try:
            self.sock.sendall(encode(args))
            return self.reader.reply()
        except OSError as exc:
            raise RedisError("Redis connection failed: %s" % exc) from None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
