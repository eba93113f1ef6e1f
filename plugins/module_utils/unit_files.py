# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing unit files and drop-ins on the host: the one writer that fediops.mastodon.systemd_dropin and
fediops.mastodon.service_apply share, so that a chain "write the unit, then run it" can be one module call.

Every file is root's, written through text_file's safe walk and replaced atomically. Unit files and drop-ins are
read by every local user: never a secret.
"""

from __future__ import annotations

import os
import secrets

from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import DropinError, dropin_path, render_dropin
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import (TextFileError, group_id, octal_mode,
                                                                                 read_text, user_id, write_atomically)


def check_dropin(unit, name, settings, state):
    """The drop-in's path and text ("" when it goes), or DropinError: every drop-in is checked before one is written."""
    path = dropin_path(unit, name)
    return path, render_dropin(settings) if state == "present" else ""


def apply_dropin(module, unit, name, settings, state):
    """Write or remove one drop-in: (changed, dropin_changed, path, diff). A folder left empty goes too."""
    try:
        path, after = check_dropin(unit, name, settings, state)
        before = read_text(path)
    except (DropinError, TextFileError) as exc:
        module.fail_json(msg=str(exc))
    folder = os.path.dirname(path)
    dropin_changed = before != after if state == "present" else os.path.lexists(path)
    if state == "present":
        changed = before != after
        if changed and not module.check_mode:
            if not os.path.isdir(folder):
                os.mkdir(folder, 0o700)
            write_atomically(path, after, mode=0o644, uid=0, gid=0)
        # The folder as the file task of earlier releases kept it: root's, 0755.
        if os.path.isdir(folder):
            folder_args = module.load_file_common_arguments(dict(path=folder, owner="root", group="root", mode="0755"))
            changed = module.set_fs_attributes_if_different(folder_args, changed)
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(dict(path=path, owner="root", group="root", mode="0644"))
            changed = module.set_fs_attributes_if_different(file_args, changed)
    else:
        changed = os.path.lexists(path)
        left = [entry for entry in (os.listdir(folder) if os.path.isdir(folder) else [])
                if entry != os.path.basename(path)]
        if not module.check_mode:
            if changed:
                os.unlink(path)
            if os.path.isdir(folder) and not left:
                os.rmdir(folder)
                changed = True
        elif os.path.isdir(folder) and not left:
            changed = True
    return changed, dropin_changed, path, dict(before=before, after=after, before_header=path, after_header=path)


def validate_text(module, path, text, command):
    """Run `command` (%s: a temporary copy of `text`) before `path` is replaced; a refusal fails the module with the
    command's own words and `refused`, and nothing is written."""
    if "%s" not in command:
        module.fail_json(msg="%s: validate must hold %%s, where the candidate file goes" % path)
    # In the module's own temporary folder (root's), through the one writer.
    candidate = os.path.join(module.tmpdir, "fediops-candidate-%s" % secrets.token_hex(8))
    try:
        write_atomically(candidate, text, mode=0o600)
        rc, out, err = module.run_command(command % candidate)
    finally:
        if os.path.lexists(candidate):
            os.unlink(candidate)
    if rc != 0:
        module.fail_json(msg="%s was left as it is: its check refused the new text: %s" % (path, (err or out).strip()),
                         refused=path, stderr=err, stdout=out, rc=rc)


def apply_file(module, path, text, mode="0644", owner="root", group="root"):
    """Write one file (a unit file, or a file a unit reads) with `text`: (changed, content_changed, diff). Its folder
    must exist."""
    bits = octal_mode(mode)
    if bits is None:
        module.fail_json(msg="%s: mode %r is not an octal mode such as 0644" % (path, mode))
    uid, gid = user_id(owner), group_id(group)
    if uid is None or gid is None:
        module.fail_json(msg="%s: owner %r or group %r is not known on this host" % (path, owner, group))
    try:
        before = read_text(path)
        content_changed = before != text or not os.path.lexists(path)
        if content_changed and not module.check_mode:
            write_atomically(path, text, mode=bits, uid=uid, gid=gid)
    except TextFileError as exc:
        module.fail_json(msg=str(exc))
    changed = content_changed
    if os.path.exists(path):
        file_args = module.load_file_common_arguments(dict(path=path, owner=owner, group=group, mode=mode))
        changed = module.set_fs_attributes_if_different(file_args, changed)
    return changed, content_changed, dict(before=before, after=text, before_header=path, after_header=path)
