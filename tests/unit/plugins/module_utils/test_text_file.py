"""text_file: no read or write follows a link, and the new file has its owner and mode before any byte."""

import os
import stat

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import text_file
from ansible_collections.fediops.mastodon.plugins.module_utils.text_file import (
    TextFileError, octal_mode, read_text, write_atomically)


def test_write_creates_the_file_with_the_requested_mode(tmp_path):
    path = tmp_path / ".env.production"
    write_atomically(str(path), "A=1\n", mode=0o600)
    assert path.read_text() == "A=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".env.production"]


def test_an_existing_file_keeps_its_mode_unless_asked(tmp_path):
    path = tmp_path / "userlist.txt"
    path.write_text("old\n")
    path.chmod(0o604)
    write_atomically(str(path), "new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    write_atomically(str(path), "newer\n", mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "newer\n"


def test_a_symlinked_destination_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "shadow"
    target.write_text("root:secret\n")
    link = tmp_path / ".env.production"
    link.symlink_to(target)
    with pytest.raises(TextFileError, match="symbolic link"):
        write_atomically(str(link), "A=1\n")
    with pytest.raises(TextFileError, match="symbolic link"):
        read_text(str(link))
    assert target.read_text() == "root:secret\n" and link.is_symlink()


@pytest.mark.parametrize("name", [".env.production.fediops-tmp", ".env.production.0.fediops-tmp",
                                  ".env.production.XXXXXXXX.fediops-tmp"])
def test_a_link_planted_under_a_temporary_name_is_never_followed(tmp_path, name):
    target = tmp_path / "victim"
    target.write_text("keep\n")
    (tmp_path / name).symlink_to(target)
    path = tmp_path / ".env.production"
    write_atomically(str(path), "A=1\n")
    assert target.read_text() == "keep\n"
    assert path.read_text() == "A=1\n" and not path.is_symlink()


def test_the_temporary_file_is_exclusive_and_random(tmp_path, monkeypatch):
    names = []
    real_open = text_file.os.open

    def spy(name, flags, *args, **kwargs):
        if str(name).endswith(".fediops-tmp"):
            names.append(name)
            assert flags & os.O_EXCL and flags & os.O_NOFOLLOW and args[0] == 0o600
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(text_file.os, "open", spy)
    path = tmp_path / "f"
    write_atomically(str(path), "1\n")
    write_atomically(str(path), "2\n")
    assert len(set(names)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def fail_fsync(fd):
    raise OSError("disk full on fd %d" % fd)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_text("old\n")
    monkeypatch.setattr(text_file.os, "fsync", fail_fsync)
    with pytest.raises(OSError):
        write_atomically(str(path), "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_non_utf8_content_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / ".env.production"
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(TextFileError, match=r"\.env\.production is not UTF-8"):
        read_text(str(path))


def test_a_missing_file_reads_as_empty(tmp_path):
    assert read_text(str(tmp_path / "none")) == ""


@pytest.mark.parametrize("value,expected", [("0640", 0o640), (0o600, 0o600), ("600", 0o600),
                                            ("u=rw", None), (None, None), (True, None)])
def test_octal_mode(value, expected):
    assert octal_mode(value) == expected


# The safe walk: the checkout belongs to the mastodon user, who may plant links and FIFOs anywhere it writes.
NOBODY = 65534


@pytest.fixture
def checkout(tmp_path):
    """/…/home/mastodon/live as on a Mastodon host: every folder from `mastodon` down belongs to another user."""
    home = tmp_path / "home"
    live = home / "mastodon" / "live"
    (live / "config").mkdir(parents=True)
    for folder in (home / "mastodon", live, live / "config"):
        os.chown(folder, NOBODY, NOBODY)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret:19000::::::\n")
    secret.chmod(0o600)
    return live, secret


@pytest.mark.parametrize("linked", ["live", "config"])
def test_a_link_at_any_component_planted_by_another_user_is_refused(checkout, linked):
    live, secret = checkout
    elsewhere = secret.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "database.yml").write_text("from elsewhere\n")
    (elsewhere / "config").mkdir()
    (elsewhere / "config" / "database.yml").write_text("from elsewhere\n")
    victim = live if linked == "live" else live / "config"
    victim.rename(victim.with_name(victim.name + ".real"))
    victim.symlink_to(elsewhere)
    path = str(live / "config" / "database.yml")
    with pytest.raises(TextFileError, match="symbolic link in a folder that another user can write"):
        read_text(path)
    with pytest.raises(TextFileError, match="symbolic link in a folder that another user can write"):
        write_atomically(path, "root writes here\n")
    assert (elsewhere / "database.yml").read_text() == "from elsewhere\n"
    assert (elsewhere / "config" / "database.yml").read_text() == "from elsewhere\n"


def test_the_last_component_linked_to_a_root_file_is_refused(checkout):
    live, secret = checkout
    (live / "config" / "database.yml").symlink_to(secret)
    with pytest.raises(TextFileError, match="symbolic link"):
        read_text(str(live / "config" / "database.yml"))
    with pytest.raises(TextFileError, match="symbolic link"):
        text_file.set_attributes(str(live / "config" / "database.yml"), 0o644, 0, 0)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_link_in_a_folder_only_root_writes_is_followed(tmp_path):
    # Debian's own /lib -> usr/lib and /var/run -> /run: links root made are part of the system.
    real = tmp_path / "usr" / "lib"
    real.mkdir(parents=True)
    (real / "unit").write_text("[Unit]\n")
    tmp_path.chmod(0o755)
    (tmp_path / "lib").symlink_to("usr/lib")
    (tmp_path / "abs").symlink_to(str(real))
    (tmp_path / "up").symlink_to("usr/lib/../lib")
    assert read_text(str(tmp_path / "lib" / "unit")) == "[Unit]\n"
    assert read_text(str(tmp_path / "abs" / "unit")) == "[Unit]\n"
    assert read_text(str(tmp_path / "up" / "unit")) == "[Unit]\n"


def test_a_fifo_is_refused_at_once_instead_of_hanging(checkout):
    live, _secret = checkout
    fifo = live / ".env.production"
    os.mkfifo(fifo)
    with pytest.raises(TextFileError, match="not a regular file"):
        read_text(str(fifo))
    with pytest.raises(TextFileError, match="not a regular file"):
        write_atomically(str(fifo), "A=1\n")
    with pytest.raises(TextFileError, match="not a regular file"):
        text_file.set_attributes(str(fifo), 0o640)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_folder_or_a_device_is_not_a_file(checkout):
    live, _secret = checkout
    with pytest.raises(TextFileError, match="not a regular file"):
        read_text(str(live / "config"))
    with pytest.raises(TextFileError, match="not a regular file"):
        read_text("/dev/zero")


def test_a_file_over_the_cap_is_refused(checkout):
    live, _secret = checkout
    path = live / "lib.rb"
    path.write_bytes(b"#" * 2048)
    assert text_file.read_bytes(str(path), max_bytes=2048) == b"#" * 2048
    with pytest.raises(TextFileError, match="larger than 1024 bytes"):
        text_file.read_bytes(str(path), max_bytes=1024)


@pytest.mark.parametrize("path", ["home/mastodon/live/.env.production", "/home/mastodon/../../etc/shadow"])
def test_relative_paths_and_dot_dot_are_refused(path):
    with pytest.raises(TextFileError):
        read_text(path)


def test_a_missing_folder_reads_as_empty_and_cannot_be_written(checkout):
    live, _secret = checkout
    assert read_text(str(live / "nope" / "file")) == ""
    with pytest.raises(TextFileError, match="folder does not exist"):
        write_atomically(str(live / "nope" / "file"), "x\n")


def test_set_attributes_works_on_the_descriptor(checkout):
    live, _secret = checkout
    path = live / ".env.production"
    path.write_text("DB_PASS=x\n")
    path.chmod(0o644)
    assert text_file.set_attributes(str(path), 0o640, NOBODY, NOBODY, check_mode=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert text_file.set_attributes(str(path), 0o640, NOBODY, NOBODY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.stat().st_uid == NOBODY
    assert not text_file.set_attributes(str(path), 0o640, NOBODY, NOBODY)
