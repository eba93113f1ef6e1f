"""pg_hba: a named block at the top of the file, taken over from blockinfile's markers."""

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils.pg_hba import PgHbaError, replace_block

DEBIAN = "# Database administrative login by Unix domain socket\nlocal   all   postgres   peer\n"
RULE = "host    mastodon_production    mastodon    10.0.0.5/32    scram-sha-256"


def test_a_new_block_goes_first_and_a_rerun_changes_nothing():
    text = replace_block(DEBIAN, "pgbouncer", [RULE])
    assert text.startswith("# BEGIN fediops.mastodon pgbouncer\n" + RULE + "\n# END fediops.mastodon pgbouncer\n")
    assert text.endswith(DEBIAN)
    assert replace_block(text, "pgbouncer", [RULE]) == text


def test_a_blockinfile_block_is_replaced_where_it_is():
    old = DEBIAN + "# BEGIN fediops.mastodon read_replica\nhost all all 10.0.0.9/32 md5\n# END fediops.mastodon read_replica\n"
    text = replace_block(old, "read_replica", [RULE])
    assert text == DEBIAN + "# BEGIN fediops.mastodon read_replica\n" + RULE + "\n# END fediops.mastodon read_replica\n"


def test_absent_removes_only_its_block():
    text = replace_block(replace_block(DEBIAN, "a", [RULE]), "b", [RULE])
    assert replace_block(text, "a", [], present=False) == replace_block(DEBIAN, "b", [RULE])
    assert replace_block(DEBIAN, "a", [], present=False) == DEBIAN


def test_a_begin_without_end_is_an_error():
    with pytest.raises(PgHbaError, match="no '# END"):
        replace_block("# BEGIN fediops.mastodon a\n" + DEBIAN, "a", [RULE])


IDENT = "# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n"


def test_an_ident_block_holds_plain_map_lines_and_goes_first():
    lines = ["# PgBouncer logs in as mastodon", "fediops_pgbouncer    postgres    mastodon",
             "fediops_pgbouncer    mastodon    mastodon"]
    text = replace_block(IDENT, "pgbouncer", lines, kind="ident")
    assert text.startswith("# BEGIN fediops.mastodon pgbouncer\n") and text.endswith(IDENT)
    assert replace_block(text, "pgbouncer", lines, kind="ident") == text


@pytest.mark.parametrize("line", [
    "local    mastodon_production    mastodon    peer",  # a pg_hba rule is not a map line
    "fediops_pgbouncer    /^(.*)$    mastodon",  # no regular expressions
    "fediops_pgbouncer    postgres",  # a column missing
    "fediops_pgbouncer    postgres    mastodon    extra",
    "fediops_pgbouncer    postgres    \"mastodon\"",
])
def test_an_ident_block_refuses_what_is_not_a_plain_map_line(line):
    with pytest.raises(PgHbaError, match="pg_ident map line"):
        replace_block(IDENT, "pgbouncer", [line], kind="ident")


def test_a_map_line_is_not_a_pg_hba_rule():
    with pytest.raises(PgHbaError, match="pg_hba rule"):
        replace_block(DEBIAN, "pgbouncer", ["fediops_pgbouncer    postgres    mastodon"])
