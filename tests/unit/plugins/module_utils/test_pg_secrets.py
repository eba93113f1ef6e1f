from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st
from passlib.hash import postgres_md5

from ansible_collections.fediops.mastodon.plugins.module_utils import pg_secrets as ps

# Secrets made by PostgreSQL 15 itself (password_encryption = scram-sha-256 / md5, then pg_authid),
# covering SASLprep: NFKC (the fi ligature), mapped-to-nothing (soft hyphen), non-ASCII space (NBSP),
# and a prohibited control character (PostgreSQL then hashes the raw bytes).
POSTGRESQL_SECRETS = [
    ("t1", "password",
     "SCRAM-SHA-256$4096:+p084bkR2Acj2QhHmtLXdQ==$jx7TkJNl6TFmv6o8EsvesecubrRTiPty+NN7HVPPo/E="
     ":DjO7duEqMR1rgpsEzyUrEAuM3PIuvqW7lEDdQfiKwe8="),
    ("t2", "p\u00e4ssw\u00f6rd \ufb01",
     "SCRAM-SHA-256$4096:Iaaylb+lEfu4rcWQaWfX4g==$6l23HGPRUxj7xvbZxC0PvEQTxeG5RrCnuRyMGk80nsw="
     ":Lo32N3tdIpAqZiTCQ9VBPS46rAJiu8oJHpkYX57+oH0="),
    ("t3", "pass\u00adword\u00a0x",
     "SCRAM-SHA-256$4096:4gcPfA4JZfEdMiaea69Njg==$1jx1t9K5ZE2AaRitiBKsZaxw+6iK9GPL6mq2NQHERF4="
     ":yPZYodbrdX8ZozaLNq9uu1QTsM+UsOzQrfWKfFcIrWQ="),
    ("t4", "\u0007abc\u00e9",
     "SCRAM-SHA-256$4096:ftQl5cs/r/9kCk/oItO5cw==$72Bd5j9SyaHtQWjET9E0d9xM1l+mz5CmV033FeuRNkE="
     ":j4s+jQHzMXKpX3Bctje5m7mWDvALaVg9W7YLaiczLy4="),
    ("t5", "Mastodon-\u00c5ngstr\u00f6m",
     "SCRAM-SHA-256$4096:Kn0kWf5jb43sRtJ145nrXA==$ji7pKU7PAZQcGChVt9cDFQ2aLxZ0oAVVbXz1/8KZ4fk="
     ":e+6uZU0nXgeD48lWPJjMAE83sUAw221AQjoPoi7ySEU="),
    ("t6", "password", "md553307b7671e9146955d626948238cbe5"),
    # PostgreSQL 15.18 (Debian 12), password_encryption = scram-sha-256: pg_saslprep()'s own order.
    # U+200B (zero-width space) is in C.1.2 and B.1: mapped to a space first
    ("t_zw", "a\u200bb",
     "SCRAM-SHA-256$4096:BntGID2kxu3wKnobEM3YpA==$N/ghtDKcDQXP8FJWivCODknqW5MlEeyCfsC4+KWIThc="
     ":PFY1MVMeSFJss4GrEz+zsCJGqtw3Mxga3kjAjsPF7ro="),
    # the same, alone: one space, not an empty password
    ("t_onlyzw", "\u200b",
     "SCRAM-SHA-256$4096:bfyW3YgtxuAOPXBa6nyyCw==$u9RxHFPYq4bNowLiskVELksqCiPywCYEU6lrEhbfTyo="
     ":9qzwhRK+K+aGvqL2CPsLQGkcOa65s2Sr3DYlDbkxo5o="),
    # U+00A0 (no-break space), C.1.2: a space
    ("t_nbsp", "pass\u00a0word",
     "SCRAM-SHA-256$4096:WLZ7ezMV0WLGBtfgMNCJgw==$OEv3YRLT/bhe8FO3RM0QOeXbCP1zFZn37RnE3nXLJ0g="
     ":XKKboaRwvXrVWGekYCmLKwDXPrnXw+pmAlkcJY6Rb7Y="),
    # U+00AD (soft hyphen), B.1: removed
    ("t_shy", "pass\u00adword",
     "SCRAM-SHA-256$4096:BT6RMP4n98ssgKdxX1lqGg==$K/rXDp6ykgxOoNFMrBL10ehYp8dvgYpaK1eh/mAI2Z0="
     ":/H9ba4Qt9ZP4Cz3UwwbY2ROJhoyou+z50LdhQfZMPnM="),
    # nothing left after B.1: PostgreSQL hashes the raw password
    ("t_allb1", "\u00ad\u200c\u200d",
     "SCRAM-SHA-256$4096:KuIDVeF0Wy8NG069JyV5LA==$qq3axWivmI8AU3XUQBB/nJle5iq2L+9a5ptCia4Vhgs="
     ":p0olaNxto1rD+6eEOoHPhPjMV+/moqlvSvJ6aGLXWrc="),
    # U+0340 (C.8) is prohibited before NFKC maps it to U+0300: the raw password
    ("t_c8", "a\u0340",
     "SCRAM-SHA-256$4096:k7fHMBYgpuZJge0aHjmSQQ==$XUemyDY2vBT0p7pag/cAyikYaN/jPLKnV7fkt6xBUu8="
     ":9O8YduOPPccqerkdGY4VZrqbFYBmh33z8U1fqi7V5EQ="),
    # U+FB1D is RandALCat at both ends before NFKC (not after): prepared, not raw
    ("t_fb1d", "\ufb1d",
     "SCRAM-SHA-256$4096:chILswloM7rPdqKmiHWo6A==$3tTu93J1CUL/kA0K1HiAfVwCqvWu+5C69tKwcoyqomM="
     ":sEVVhk2YULqnrKCJh/ql5aPZAJ0Y8C/16eXBdaSPkMI="),
]


@pytest.mark.parametrize("password, prepared", [
    ("a\u200bb", "a b"),  # C.1.2 before B.1: U+200B is a space, as in pg_saslprep()
    ("\u200b", " "),
    ("pass\u00a0word", "pass word"),
    ("pass\u00adword", "password"),
    ("\u00ad\u200c\u200d", "\u00ad\u200c\u200d"),  # nothing left: the raw password
    ("a\u0340", "a\u0340"),  # prohibited (C.8) before normalization: the raw password
    ("\ufb1d", "\u05d9\u05b4"),  # bidi checked before normalization: prepared
    ("I\u2168", "IIX"),  # NFKC
    ("plain ascii \x07", "plain ascii \x07"),  # ASCII is used as it is
])
def test_saslprep_follows_postgresql(password, prepared):
    assert ps.saslprep(password) == prepared


def test_scram_of_a_zero_width_space_is_the_scram_of_a_space():
    salt = b"0123456789abcdef"
    assert ps.scram_secret("a\u200bb", salt) == ps.scram_secret("a b", salt)
    assert ps.scram_secret("a\u200bb", salt) != ps.scram_secret("ab", salt)


@pytest.mark.parametrize("name, password, expected", [
    ("mastodon", "password", "md5d75bb2be2d7086c6148944261a00f605"),  # the guide's examples
    ("pgbouncer", "password", "md5a45753afaca0db833a6f7c7b2864b9d9"),
])
def test_md5_matches_the_guide(name, password, expected):
    assert ps.md5_secret(name, password) == expected


@given(st.text(alphabet=st.characters(min_codepoint=0x61, max_codepoint=0x7a), min_size=1, max_size=30),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
               min_size=1, max_size=40))
def test_md5_agrees_with_passlib(name, password):
    if ps.secret_type(password) != "plain":
        return
    assert ps.md5_secret(name, password) == postgres_md5.hash(password, user=name)


@pytest.mark.parametrize("name, password, secret", POSTGRESQL_SECRETS)
def test_secrets_made_by_postgresql_verify(name, password, secret):
    assert ps.verify(name, password, secret)
    assert not ps.verify(name, password + "x", secret)
    assert ps.make_secret(name, password, ps.secret_type(secret), existing=secret) == secret


def test_scram_with_postgresql_salt_reproduces_postgresql():
    name, password, secret = POSTGRESQL_SECRETS[1]
    salt = base64.b64decode(secret.split("$")[1].split(":")[1])
    assert ps.parse_scram(secret)["salt"] == salt
    assert ps.scram_secret(password, salt=salt, iterations=4096) == secret


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
               min_size=1, max_size=20))
def test_scram_round_trip(password):
    if ps.secret_type(password) != "plain":
        return
    secret = ps.scram_secret(password, iterations=16)
    assert ps.secret_type(secret) == "scram-sha-256"
    assert ps.verify("anyone", password, secret)
    parts = ps.parse_scram(secret)
    assert parts["iterations"] == 16 and len(parts["salt"]) == ps.SCRAM_SALT_LEN


def test_scram_is_salted_anew_but_kept_when_it_verifies():
    first = ps.make_secret("mastodon", "pw", "scram-sha-256")
    second = ps.make_secret("mastodon", "pw", "scram-sha-256")
    assert first != second
    assert ps.make_secret("mastodon", "pw", "scram-sha-256", existing=first) == first
    # The wrong type or the wrong password gives a new secret.
    assert ps.make_secret("mastodon", "pw", "md5", existing=first) == ps.md5_secret("mastodon", "pw")
    assert ps.make_secret("mastodon", "other", "scram-sha-256", existing=first) != first


@pytest.mark.parametrize("secret, kind", [
    ("md5d75bb2be2d7086c6148944261a00f605", "md5"),
    ("md5D75BB2BE2D7086C6148944261A00F605", "plain"),
    ("md5d75bb2be2d7086c6148944261a00f6", "plain"),
    (POSTGRESQL_SECRETS[0][2], "scram-sha-256"),
    ("SCRAM-SHA-256$4096:abc", "plain"),
    ("password", "plain"),
    ("", "plain"),
])
def test_secret_type(secret, kind):
    assert ps.secret_type(secret) == kind


def test_plaintext_entry_verifies_by_equality():
    assert ps.verify("u", "pw", "pw") and not ps.verify("u", "pw", "pW")


@pytest.mark.parametrize("name, message", [
    ("", "non-empty"),
    ("a\nb", "userlist.txt cannot hold"),
    ("a\rb", "userlist.txt cannot hold"),
    ("a\x00b", "userlist.txt cannot hold"),
    ("x" * 128, "shorter name"),
    ('"' * 64, "shorter name"),
    (None, "non-empty"),
])
def test_bad_names_are_refused(name, message):
    with pytest.raises(ps.SecretError, match=message):
        ps.validate_name(name)


def test_longest_name_pgbouncer_reads():
    ps.validate_name("x" * 127)
    ps.validate_name('"' * 63 + "x")


@pytest.mark.parametrize("password, message", [
    ("", "empty"),
    ("a\x00b", "NUL"),
    ("a\nb", "line break"),
    ("md5d75bb2be2d7086c6148944261a00f605", "looks like"),
    (POSTGRESQL_SECRETS[0][2], "looks like"),
])
def test_bad_passwords_are_refused_without_echoing_them(password, message):
    with pytest.raises(ps.SecretError, match=message) as info:
        ps.validate_password(password)
    if password:
        assert password not in str(info.value)


@pytest.mark.parametrize("value, quoted", [
    ("mastodon", '"mastodon"'),
    ('we"ird', '"we""ird"'),
    ('"', '""""'),
])
def test_quote_doubles_quotes(value, quoted):
    assert ps.quote(value) == quoted


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
               min_size=1, max_size=40))
def test_entries_parse_back(name):
    if ps._quoted_len(name) >= ps.MAX_NAME_BYTES:
        return
    line = ps.format_entry(name, "md5d75bb2be2d7086c6148944261a00f605")
    assert ps.parse_line(line) == ("user", name, "md5d75bb2be2d7086c6148944261a00f605")


@pytest.mark.parametrize("line, parsed", [
    ("", ("blank", None, None)),
    ("   ", ("blank", None, None)),
    ("; comment", ("comment", None, None)),
    ('  "a" "b" trailing', ("user", "a", "b")),
    ('"a""b"   "c"', ("user", 'a"b', "c")),
    ('"a"', ("broken", None, None)),
    ("a b", ("broken", None, None)),
    ("# not a comment for PgBouncer", ("broken", None, None)),
])
def test_parse_line(line, parsed):
    assert ps.parse_line(line) == parsed


EXISTING = '; managed by hand\n"other" "md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\n\n"mastodon" "plaintext"\n'


def test_update_adds_changes_keeps_and_is_idempotent():
    users = [{"name": "mastodon", "password": "password"}, {"name": "pgbouncer", "password": "password"}]
    text, added, changed, removed = ps.update_userlist(EXISTING, users, "md5")
    assert (added, changed, removed) == (["pgbouncer"], ["mastodon"], [])
    assert text == ('; managed by hand\n"other" "md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\n\n'
                    '"mastodon" "md5d75bb2be2d7086c6148944261a00f605"\n'
                    '"pgbouncer" "md5a45753afaca0db833a6f7c7b2864b9d9"\n')
    assert ps.update_userlist(text, users, "md5") == (text, [], [], [])


def test_scram_entries_are_not_resalted():
    users = [{"name": "mastodon", "password": "pw"}]
    text = ps.update_userlist("", users, "scram-sha-256")[0]
    assert ps.update_userlist(text, users, "scram-sha-256") == (text, [], [], [])
    switched, _added, changed, _removed = ps.update_userlist(text, users, "md5")
    assert changed == ["mastodon"] and ps.md5_secret("mastodon", "pw") in switched


def test_exclusive_absent_and_duplicates():
    users = [{"name": "mastodon", "password": "password"}, {"name": "gone", "state": "absent"}]
    text = '"gone" "x"\n"mastodon" "x"\n"mastodon" "y"\nbroken line\n; comment\n'
    new, added, changed, removed = ps.update_userlist(text, users, "md5", exclusive=True)
    assert new == '"mastodon" "md5d75bb2be2d7086c6148944261a00f605"\n; comment\n'
    assert (added, changed, removed) == ([], ["mastodon"], ["gone"])
    kept = ps.update_userlist(text, users, "md5")[0]
    assert "broken line\n" in kept


def test_given_secret_is_written_as_is_and_must_verify():
    secret = POSTGRESQL_SECRETS[0][2]
    users = [{"name": "t1", "password": "password", "secret": secret}]
    assert ps.update_userlist("", users, "scram-sha-256")[0] == '"t1" "%s"\n' % secret
    with pytest.raises(ps.SecretError, match="not a scram-sha-256 secret"):
        ps.update_userlist("", [{"name": "t1", "password": "wrong", "secret": secret}], "scram-sha-256")


@pytest.mark.parametrize("users", [
    [{"name": "", "password": "x"}],
    [{"name": "a\nb", "password": "x"}],
    [{"name": "x" * 128, "password": "x"}],
    [{"name": "ok", "password": ""}],
    [{"name": "ok", "password": "x"}, {"name": "ok", "password": "y"}],
])
def test_invalid_users_fail_before_anything_is_produced(users):
    with pytest.raises(ps.SecretError):
        ps.update_userlist(EXISTING, users, "md5")


def test_mask_userlist_hides_every_secret():
    text = ps.update_userlist(EXISTING, [{"name": "mastodon", "password": "password"}], "scram-sha-256")[0]
    masked = ps.mask_userlist(text + "junk\n")
    assert "SCRAM" not in masked and "md5a" not in masked and "plaintext" not in masked
    assert '"mastodon" "********"' in masked and "; managed by hand" in masked
    assert "junk" not in masked
