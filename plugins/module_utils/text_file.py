# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way root reads and replaces a file: a safe walk from `/`, one component at a time.

The folders these files live in may belong to another user: Mastodon's checkout (`.env.production`,
`config/database.yml`, `lib/mastodon/version.rb`) belongs to the `mastodon` user, who runs the most exposed
process on the host. That user could plant a symbolic link or a FIFO anywhere it can write, to make root read
`/etc/shadow` into a file it can read, write into another folder, or hang. So:

- the path is walked from `/` with openat(O_NOFOLLOW | O_DIRECTORY), one component at a time. A symbolic link
  is followed only where it stands in a folder that only root can write (Debian's own `/lib -> usr/lib`,
  `/var/run -> /run`); a link in a folder any other user can write is refused;
- the file itself is never a link, and must be a regular file: it is opened with O_NOFOLLOW | O_NONBLOCK (a
  FIFO cannot block the open) and checked with fstat;
- a read stops at a size cap;
- a new file is created exclusively under a random name, without following links, in the folder the walk
  opened, and renamed over the old one there: even a link planted after the check is replaced, never followed.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import secrets
import stat

# Larger than any file the collection reads (.env.production, version.rb, database.yml, redis.conf, a unit).
MAX_BYTES = 4 * 1024 * 1024
# As the kernel does (MAXSYMLINKS).
MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class TextFileError(ValueError):
    """A file this module refuses to read or replace; the message names the path."""


def _parts(path, where):
    text = str(path)
    if not text.startswith("/"):
        raise TextFileError("%s is not an absolute path" % where)
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise TextFileError("%s holds '..': give the path without it" % where)
    return parts


def _only_root_writes(st):
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _open_folder(parts, path):
    """A descriptor of the folder `/parts...`, reached from `/` without following a link that another user
    could have planted. FileNotFoundError when a component is missing."""
    fd = os.open("/", _DIR_FLAGS)
    done, todo, links = [], list(parts), 0
    try:
        while todo:
            name = todo.pop(0)
            here = "/" + "/".join(done + [name])
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                folder = os.fstat(fd)
                if not _only_root_writes(folder):
                    raise TextFileError(
                        "%s: %s is a symbolic link in a folder that another user can write (owner uid %d, mode %04o); "
                        "refusing to follow it. Make it a real folder, or name the real path in the variable."
                        % (path, here, folder.st_uid, stat.S_IMODE(folder.st_mode)))
                links += 1
                if links > MAX_LINKS:
                    raise TextFileError("%s: too many symbolic links on the way" % path)
                target = os.readlink(name, dir_fd=fd)
                rest = [part for part in target.split("/") if part not in ("", ".")]
                if target.startswith("/") or ".." in rest:
                    # Start again from / with the link's target resolved as text against what was walked.
                    base = "/" if target.startswith("/") else "/" + "/".join(done)
                    todo = _parts(os.path.normpath(os.path.join(base, target)), path) + todo
                    os.close(fd)
                    fd = os.open("/", _DIR_FLAGS)
                    done = []
                else:
                    todo = rest + todo
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise TextFileError("%s: %s is not a folder" % (path, here))
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise TextFileError("%s: %s changed into a link or file while it was walked" % (path, here)) from None
                raise
            os.close(fd)
            fd = child
            done.append(name)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_parent(path):
    """(folder descriptor, file name) for `path`, through the safe walk. The caller closes the descriptor."""
    parts = _parts(path, path)
    if not parts:
        raise TextFileError("%s names no file" % path)
    return _open_folder(parts[:-1], path), parts[-1]


def _refuse(path, info):
    if stat.S_ISLNK(info.st_mode):
        raise TextFileError(
            "%s is a symbolic link; refusing to read or replace it through the link (make it a regular file)" % path)
    if not stat.S_ISREG(info.st_mode):
        raise TextFileError("%s is not a regular file (a folder, FIFO, socket or device); refusing to use it" % path)


def read_bytes(path, max_bytes=MAX_BYTES):
    """The file's bytes through the safe walk, or None when it (or its folder) does not exist."""
    try:
        folder, name = open_parent(path)
    except FileNotFoundError:
        return None
    try:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _refuse(path, os.stat(name, dir_fd=folder, follow_symlinks=False))
            raise TextFileError("%s cannot be read: %s" % (path, exc.strerror)) from None
        try:
            _refuse(path, os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes + 1)
    finally:
        os.close(folder)
    if len(data) > max_bytes:
        raise TextFileError("%s is larger than %d bytes; refusing to read it" % (path, max_bytes))
    return data


def read_text(path, max_bytes=MAX_BYTES):
    """Return the file's text, or "" when it does not exist. A link, a file that is not regular, a file over the
    size cap or non-UTF-8 content is an error."""
    data = read_bytes(path, max_bytes)
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextFileError("%s is not UTF-8 text (invalid byte at offset %d); fix or remove it first"
                            % (path, exc.start)) from None


def exists(path):
    """Whether `path` names something, through the safe walk (a link at the end counts: it is refused later)."""
    try:
        folder, name = open_parent(path)
    except FileNotFoundError:
        return False
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(folder)


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


def file_mode(path):
    """The permission bits of the regular file `path` (through the safe walk), or None when it does not exist."""
    try:
        folder, name = open_parent(path)
    except FileNotFoundError:
        return None
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(folder)
    _refuse(path, info)
    return stat.S_IMODE(info.st_mode)


def set_attributes(path, mode=None, uid=None, gid=None, check_mode=False):
    """Give the regular file `path` this owner, group and mode (None leaves one as it is), on a descriptor the
    safe walk opened, never through a path another user could redirect. Returns whether anything differed."""
    folder, name = open_parent(path)
    try:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _refuse(path, os.stat(name, dir_fd=folder, follow_symlinks=False))
            raise TextFileError("%s cannot be opened: %s" % (path, exc.strerror)) from None
    finally:
        os.close(folder)
    try:
        info = os.fstat(fd)
        _refuse(path, info)
        owner_differs = (uid is not None and uid != info.st_uid) or (gid is not None and gid != info.st_gid)
        mode_differs = mode is not None and mode != stat.S_IMODE(info.st_mode)
        if not check_mode:
            if owner_differs:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            if owner_differs or mode_differs:
                # chown clears set-id bits: the mode goes on afterwards, as asked or as it was.
                os.fchmod(fd, stat.S_IMODE(info.st_mode) if mode is None else mode)
        return owner_differs or mode_differs
    finally:
        os.close(fd)


def write_atomically(path, text, mode=None, uid=None, gid=None, new_mode=0o640):
    """Replace `path` with `text` through a new temporary file in the same folder and a rename.

    The folder is reached by the safe walk. The temporary file is created with O_EXCL and O_NOFOLLOW under a
    random name, mode 0600. Owner, group and mode are set on the open descriptor (the requested ones, else the
    existing file's, else `new_mode`) before any byte is written, the data is fsynced, and the rename replaces
    the name in the walked folder: even a link planted after the check is replaced, never followed.
    """
    try:
        folder, name = open_parent(path)
    except FileNotFoundError:
        raise TextFileError("%s cannot be written: its folder does not exist" % path) from None
    try:
        try:
            current = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if current is not None:
            _refuse(path, current)
        final_mode = mode if mode is not None else (stat.S_IMODE(current.st_mode) if current else new_mode)
        final_uid = uid if uid is not None else (current.st_uid if current else -1)
        final_gid = gid if gid is not None else (current.st_gid if current else -1)

        tmp = ".%s.%s.fediops-tmp" % (name, secrets.token_hex(8))
        fd = os.open(tmp, _CREATE_FLAGS, 0o600, dir_fd=folder)
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
            os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            if fd is not None:
                os.close(fd)
            try:
                os.unlink(tmp, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise
        os.fsync(folder)
    finally:
        os.close(folder)
