# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace a text file atomically from a module, for the modules that render whole files."""

from __future__ import annotations

import os


def read_text(path):
    """Return the file's text, or "" when it does not exist."""
    if not os.path.exists(path):
        return ""
    with open(path, "r", encoding="utf-8") as handle:
        return handle.read()


def write_atomically(module, path, text, new_mode=0o640):
    """Write `text` to `path` through a temporary file in the same folder and a rename.

    The temporary file is created 0600, so a secret is never readable by others in between. An
    existing file's owner, group and mode carry over; a new file gets `new_mode`. The caller applies
    the owner, group and mode the task asked for afterwards.
    """
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, ".%s.fediops-tmp" % os.path.basename(path))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    if os.path.exists(path):
        st = os.stat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, st.st_mode & 0o7777)
    else:
        os.chmod(tmp, new_mode)
    module.atomic_move(tmp, path)
