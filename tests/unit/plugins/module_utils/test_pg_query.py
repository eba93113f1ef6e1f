"""pg_query: values reach psql as \\set lines, never in the SQL text or argv; rows survive any value."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils.pg_query import (
    FIELD_SEP, READ_ONLY, ROW_SEP, QueryError, argv, conninfo, parse_rows, psql_set_value, script)


def test_values_come_first_as_set_lines_and_the_query_names_them():
    text = script("ALTER ROLE :\"role\" PASSWORD :'secret'", {"secret": "SCRAM-SHA-256$4096:x", "role": "mastodon"},
                  read_only=False)
    assert text == ("\\set role 'mastodon'\n\\set secret 'SCRAM-SHA-256$4096:x'\n"
                    "ALTER ROLE :\"role\" PASSWORD :'secret';\n")


def test_a_read_runs_in_a_read_only_transaction():
    assert script("SELECT 1") == READ_ONLY + "SELECT 1;\n"


@pytest.mark.parametrize("value, quoted", [
    ("it's", "'it\\'s'"),
    ("back\\slash", "'back\\\\slash'"),
    ("two\nlines", "'two\\nlines'"),
    ("tab\there", "'tab\\there'"),
    (":'other'", "':\\'other\\''"),
    (42, "'42'"),
])
def test_a_value_is_one_quoted_meta_command_argument(value, quoted):
    assert psql_set_value(value) == quoted


@given(st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_no_value_can_end_its_set_line_or_its_quotes(value):
    line = psql_set_value(value)
    assert "\n" not in line and "\r" not in line
    # Every quote inside is escaped, so the argument ends at the last character and nowhere before.
    inner = line[1:-1]
    i = 0
    while i < len(inner):
        assert inner[i] != "'", line
        i += 2 if inner[i] == "\\" else 1


@pytest.mark.parametrize("name", ["ON_ERROR_STOP", "ROW_COUNT", "USER", "1x", "a-b", "a b", ""])
def test_a_name_psql_would_misread_is_refused(name):
    with pytest.raises(QueryError):
        script("SELECT 1", {name: "x"})


def test_a_nul_byte_is_refused():
    with pytest.raises(QueryError):
        psql_set_value("a\x00b")


def test_the_command_line_holds_no_value_and_runs_as_the_peer_user():
    cmd = argv("/usr/bin/psql", conninfo("mastodon_production", 5433), "postgres")
    assert cmd[:4] == ["runuser", "-u", "postgres", "--"] and "-w" in cmd
    assert cmd[-2:] == ["-d", "dbname='mastodon_production' port='5433'"]
    assert argv("psql", conninfo(host="127.0.0.1", user="rep'l"), None)[0] == "psql"
    assert conninfo(host="127.0.0.1", user="rep'l") == "dbname='postgres' port='5432' host='127.0.0.1' user='rep\\'l'"


def test_a_statement_with_a_secret_gets_terse_errors_without_the_statement():
    assert argv("psql", "dbname='postgres'", None, terse=True)[-4:] == ["-v", "VERBOSITY=terse", "-d", "dbname='postgres'"]


def test_rows_and_fields_split_on_their_own_separators_only():
    out = "a\nb" + FIELD_SEP + "2" + ROW_SEP + "" + FIELD_SEP + "3" + ROW_SEP
    assert parse_rows(out) == [["a\nb", "2"], ["", "3"]]
    assert parse_rows("") == []
    assert parse_rows("t" + ROW_SEP) == [["t"]]
