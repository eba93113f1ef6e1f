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
    real = text_file.tempfile.mkstemp

    def spy(**kwargs):
        fd, name = real(**kwargs)
        names.append(name)
        flags = os.stat(name)
        assert stat.S_IMODE(flags.st_mode) == 0o600
        return fd, name

    monkeypatch.setattr(text_file.tempfile, "mkstemp", spy)
    path = tmp_path / "f"
    write_atomically(str(path), "1\n")
    write_atomically(str(path), "2\n")
    assert len(set(names)) == 2
    assert all(os.path.dirname(n) == str(tmp_path) for n in names)


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
