# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and replace a text file safely, for the modules that render whole files.

The folders these files live in may belong to another user (.env.production sits in the mastodon
user's home), who could plant a symbolic link where root is about to read or write. So nothing here
follows a link: a path that is one is refused, and the temporary file is created exclusively under a
random name, without following links, in the destination's own folder.
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile


class TextFileError(ValueError):
    """A file this module refuses to read or replace; the message names the path."""


def refuse_symlink(path):
    """Raise TextFileError when `path` is a symbolic link (whatever it points at)."""
    if os.path.islink(path):
        raise TextFileError(
            "%s is a symbolic link; refusing to read or replace it through the link (make it a regular file)" % path)


def read_text(path):
    """Return the file's text, or "" when it does not exist. A link or non-UTF-8 content is an error."""
    refuse_symlink(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextFileError("%s is not UTF-8 text (invalid byte at offset %d); fix or remove it first"
                            % (path, exc.start)) from None


def octal_mode(value):
    """The permission bits of a mode given as an int or an octal string ("0640"); None for anything else
    (symbolic modes are left to Ansible's own file attribute handling)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value & 0o7777
    text = str(value).strip()
    if text and all(c in "01234567" for c in text):
        return int(text, 8) & 0o7777
    return None


def _id(value, lookup):
    if value is None or value == "":
        return None
    if str(value).isdigit():
        return int(value)
    try:
        return lookup(str(value))
    except KeyError:
        return None


def user_id(owner):
    """uid of a user name or number; None when unset or unknown (Ansible then reports it)."""
    return _id(owner, lambda name: pwd.getpwnam(name).pw_uid)


def group_id(group):
    """gid of a group name or number; None when unset or unknown."""
    return _id(group, lambda name: grp.getgrnam(name).gr_gid)


def write_atomically(path, text, mode=None, uid=None, gid=None, new_mode=0o640):
    """Replace `path` with `text` through a new temporary file in the same folder and a rename.

    The temporary file is created with O_EXCL and O_NOFOLLOW under a random name, mode 0600. Owner,
    group and mode are set on the open descriptor (the requested ones, else the existing file's, else
    `new_mode`) before any byte is written, the data is fsynced, and the rename replaces the path
    itself: even a link planted after the check is replaced, never followed.
    """
    refuse_symlink(path)
    directory = os.path.dirname(path) or "."
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        current = None
    final_mode = mode if mode is not None else (current.st_mode & 0o7777 if current else new_mode)
    final_uid = uid if uid is not None else (current.st_uid if current else -1)
    final_gid = gid if gid is not None else (current.st_gid if current else -1)

    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".fediops-tmp", dir=directory)
    try:
        # chown first: it clears set-id bits that chmod then sets as asked.
        os.fchown(fd, final_uid, final_gid)
        os.fchmod(fd, final_mode)
        data = text.encode("utf-8")
        while data:
            written = os.write(fd, data)
            data = data[written:]
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
