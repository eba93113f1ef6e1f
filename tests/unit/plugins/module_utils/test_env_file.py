from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import env_file as ef

SAMPLE = """# Federation
LOCAL_DOMAIN=example.test

# PostgreSQL
DB_HOST=/var/run/postgresql
DB_USER=mastodon
DB_PASS=
DB_PORT=5432
export REDIS_HOST=localhost # inline comment
SECRET_KEY_BASE='abc$def'
"""


def test_parse_reads_dotenv_forms():
    parsed = ef.parse(SAMPLE)
    assert parsed["LOCAL_DOMAIN"] == "example.test"
    assert parsed["DB_PASS"] == ""
    assert parsed["REDIS_HOST"] == "localhost"
    assert parsed["SECRET_KEY_BASE"] == "abc$def"


def test_update_keeps_comments_order_and_other_keys():
    new, added, updated, removed = ef.update(SAMPLE, {"DB_PORT": 6432, "DB_HOST": "127.0.0.1",
                                                      "PREPARED_STATEMENTS": "false"})
    assert added == ["PREPARED_STATEMENTS"]
    assert updated == ["DB_HOST", "DB_PORT"]
    assert removed == []
    lines = new.splitlines()
    assert lines[0] == "# Federation"
    assert lines.index("DB_HOST=127.0.0.1") < lines.index("DB_USER=mastodon") < lines.index("DB_PORT=6432")
    assert lines[-1] == "PREPARED_STATEMENTS=false"
    assert "export REDIS_HOST=localhost # inline comment" in lines


def test_update_is_idempotent():
    once = ef.update(SAMPLE, {"DB_PORT": "6432", "X": "a b"})[0]
    again = ef.update(once, {"DB_PORT": "6432", "X": "a b"})
    assert again == (once, [], [], [])


def test_unchanged_file_without_trailing_newline_stays_byte_identical():
    text = "A=1\nB=2"
    assert ef.update(text, {"A": "1"}) == (text, [], [], [])


def test_remove_and_duplicates():
    text = "A=1\nB=2\nA=3\n"
    new, added, updated, removed = ef.update(text, {"A": "9", "B": None})
    assert new == "A=9\n"
    assert (added, updated, removed) == ([], ["A"], ["B"])
    assert ef.update("A=1\n", {"Z": None}) == ("A=1\n", [], [], [])


@pytest.mark.parametrize("value, rendered", [
    ("plain", "plain"),
    ("postgres://u@h:5432/db", "postgres://u@h:5432/db"),
    ("has space", "'has space'"),
    ("p$ss", "'p$ss'"),
    ("it's", '"it\'s"'),
    ("", ""),
    ('p"a$b\\c #d \u00e9', '\'p"a$b\\c #d \u00e9\''),
    ("it's \"x\" \\y", "it's \"x\" \\y"),
    ("it's #1", '"it\'s #1"'),
    ("line\nbreak", '"line\\nbreak"'),
    ("trailing\\", "'trailing\\'"),
    ("p'a$b\"c\\d", "'p'a$b\"c\\d'"),
    (" it's", "\" it's\""),
    ("it's\nx\\", '"it\'s\\nx\\"'),
])
def test_format_value(value, rendered):
    assert ef.format_value(value) == rendered
    assert ef.read_as_ruby_dotenv(rendered) == value
    assert ef.read_as_node_dotenv(rendered) == value


# Each holds a combination that one of the two readers must misread: refused, naming only the key.
@pytest.mark.parametrize("value", [
    "it's #1 \"x\"",
    "it's #1 $x",
    "it's #1 \\x",
    "it's\n$x",
])
def test_values_no_single_rendering_serves_both_readers_are_refused(value):
    with pytest.raises(ef.EnvFileError) as err:
        ef.update("A=1\n", {"DB_PASS": value})
    assert "DB_PASS" in str(err.value)
    assert value not in str(err.value)


@pytest.mark.parametrize("raw, ruby, node", [
    ('"p\'a\\$b\\"c\\\\d"', None, "p'a\\$b\\\"c\\\\d"),
    ("a$HOME", None, "a$HOME"),
    ("x#y", "x", "x"),
    ("`tick`", "`tick`", "tick"),
    ("'single' # comment", "single", "single"),
])
def test_readers_differ_as_the_real_libraries_do(raw, ruby, node):
    assert ef.read_as_ruby_dotenv(raw) == ruby
    assert ef.read_as_node_dotenv(raw) == node
    assert ef.read_alike(raw) is None or ruby == node


@pytest.mark.parametrize("key", ["1A", "A-B", "", "A B"])
def test_invalid_keys_are_refused(key):
    with pytest.raises(ef.EnvFileError):
        ef.update("", {key: "x"})


def test_mask_hides_secret_values_and_url_passwords():
    text = ("DB_PASS=hunter2\nCACHE_REDIS_URL=redis://:s3cret@127.0.0.1:6380/0\n"
            "REPLICA_DATABASE_URL=postgresql://mastodon:pw@db:5432/m\nDB_USER=mastodon\nEMPTY_PASS=\n")
    masked = ef.mask(text)
    assert "hunter2" not in masked and "s3cret" not in masked and ":pw@" not in masked
    assert "DB_USER=mastodon" in masked
    assert "EMPTY_PASS=\n" in masked
    assert ef.mask("CUSTOM=x\n", ["CUSTOM"]) == "CUSTOM=%s\n" % ef.MASK


values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=40)


@given(values)
def test_any_value_is_refused_or_read_back_alike_by_both_readers(value):
    try:
        text = ef.update("# head\nOTHER=1\n", {"KEY": value})[0]
    except ef.EnvFileError as err:
        assert "KEY" in str(err)
        return
    line = [ln for ln in text.split("\n") if ln.startswith("KEY=")][0]
    raw = line[len("KEY="):]
    assert ef.read_as_ruby_dotenv(raw) == value
    assert ef.read_as_node_dotenv(raw) == value
    assert ef.parse(text)["OTHER"] == "1"
    assert ef.update(text, {"KEY": value})[0] == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n'$"),
               max_size=40))
def test_values_without_a_quote_and_dollar_together_are_always_written(value):
    text = ef.update("", {"KEY": value})[0]
    assert ef.read_alike(text.split("=", 1)[1].rstrip("\n")) == value


def test_an_existing_line_both_readers_misread_is_rewritten():
    text = 'DB_PASS="p\\"q"\n'
    new, added, updated, removed = ef.update(text, {"DB_PASS": 'p"q'})
    assert updated == ["DB_PASS"]
    assert new == "DB_PASS='p\"q'\n"


@pytest.mark.parametrize("line, secret", [
    ("OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("OTEL_EXPORTER_OTLP_HEADERS='authorization: Bearer abcdefghijkl'", "abcdefghijkl"),
    ("UPSTREAM_HEADER=Bearer abcdefghijklmnop", "abcdefghijklmnop"),
    ("WEBHOOK=https://example.com/hook?token=t0ps3cret", "t0ps3cret"),
    ("S3_ENDPOINT=https://key:pa/ss@s3.example.com", "pa/ss"),
    ("ES_HOST=http://elastic:p@ss w0rd@10.0.0.7:9200", "ss w0rd"),
    ("AWS_CREDENTIALS=abc123", "abc123"),
])
def test_mask_hides_values_that_look_like_credentials_whatever_the_key(line, secret):
    masked = ef.mask("LOCAL_DOMAIN=example.com\n%s\n" % line)
    assert secret not in masked
    assert "LOCAL_DOMAIN=example.com" in masked


def test_mask_hides_every_line_of_a_quoted_secret_that_spans_lines():
    text = 'A=1\nVAPID_PRIVATE_KEY="line one\nline two\nline three"\nB=2\n'
    masked = ef.mask(text)
    assert "line" not in masked
    assert masked.startswith("A=1\n") and "B=2" in masked


def test_a_credential_on_a_line_that_is_no_assignment_is_hidden():
    assert "hunter2" not in ef.mask("garbage redis://:hunter2@host\n")


@pytest.mark.parametrize("key, value, secret", [
    ("DB_PASS", "x", True),
    ("AWS_CREDENTIALS", "x", True),
    ("LOCAL_DOMAIN", "example.com", False),
    ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic dXNlcjpwYXNz", True),
    ("DATABASE_URL", "postgres://m:pw@db/m", True),
    ("DATABASE_URL", "postgres://db/m", False),
    ("WEB_DOMAIN", "https://example.com:443/@user", True),  # a false positive is masked, which is the safe side
])
def test_is_secret_by_name_or_by_value(key, value, secret):
    assert ef.is_secret(key, value=value) is secret


def test_secret_keys_is_the_one_rule_and_urls_are_optional():
    values = {"DB_PASS": "x", "DB_HOST": "10.0.0.1", "CACHE_REDIS_URL": "redis://127.0.0.1:6380/0",
              "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic dXNlcjpwYXNz", "MINE": "y"}
    assert ef.secret_keys(values) == ["DB_PASS", "OTEL_EXPORTER_OTLP_HEADERS"]
    assert ef.secret_keys(values, ["MINE"], urls=True) == ["CACHE_REDIS_URL", "DB_PASS", "MINE", "OTEL_EXPORTER_OTLP_HEADERS"]
    assert ef.secret_parts("redis://:pw@h:1/0") == ["redis://:pw@h:1/0", "pw"]
