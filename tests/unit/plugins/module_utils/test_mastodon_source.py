"""mastodon_source: the version a checkout declares, from lib/mastodon/version.rb as Mastodon writes it."""

import os

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import mastodon_source as ms
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_source import (
    MastodonSourceError, version_from_source)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

MASTODON_STYLE = """# frozen_string_literal: true

module Mastodon
  module Version
    module_function

    def major
      4
    end

    def minor
      3
    end

    def patch
      12
    end

    def default_prerelease
      'alpha.1'
    end
  end
end
"""


def test_the_version_of_a_mastodon_checkout():
    assert version_from_source(MASTODON_STYLE) == "4.3.12"


def test_the_stand_in_declares_what_it_acts_as():
    with open(os.path.join(TOP, "tests", "fixtures", "standin", "lib", "mastodon", "version.rb"), encoding="utf-8") as f:
        assert version_from_source(f.read()) == "4.5.0"


@pytest.mark.parametrize("text", ["", "def major\n  four\nend", MASTODON_STYLE.replace("def patch", "def patchlevel")])
def test_anything_else_is_an_error_naming_the_variable(text):
    with pytest.raises(MastodonSourceError, match="mastodon_version"):
        version_from_source(text)


@pytest.mark.parametrize("text, parsed", [("4.4.0", (4, 4, 0)), ("v4.3.2", (4, 3, 2)), ("4.5.0-beta.1", (4, 5, 0)),
                                          ("4.3", (4, 3, 0)), (" 4.1.22 ", (4, 1, 22))])
def test_parse_version_is_the_one_parser_of_mastodon_versions(text, parsed):
    assert ms.parse_version(text) == parsed


@pytest.mark.parametrize("text", ["latest", "4", "", None, "4.x"])
def test_parse_version_refuses_what_is_not_a_release(text):
    with pytest.raises(ms.MastodonSourceError):
        ms.parse_version(text)


@pytest.mark.parametrize("host, part", [("10.0.0.5", "10.0.0.5"), ("::1", "[::1]"), ("[::1]", "[::1]"),
                                        ("db.example", "db.example"), (" 10.0.0.5 ", "10.0.0.5")])
def test_url_host(host, part):
    assert ms.url_host(host) == part


# version.rb is written by the mastodon user: bounded patterns, comments are not code.
@pytest.mark.parametrize("text", [
    MASTODON_STYLE.replace("    def major\n      4\n    end", "    # def major\n    #   1\n    # end\n    def major\n      4\n    end"),
    "# def major\n# 1\n# end\n" + MASTODON_STYLE,
    "=begin\ndef major\n  1\nend\n=end\n" + MASTODON_STYLE,
    MASTODON_STYLE.replace("      4\n", "      4 # the major\n"),
])
def test_comments_never_count_as_the_version(text):
    assert version_from_source(text) == "4.3.12"


def test_one_line_definitions():
    assert version_from_source("def major; 4; end\ndef minor = 2\ndef patch()\n  1\nend\n") == "4.2.1"


def test_a_part_defined_twice_with_different_numbers_is_refused():
    with pytest.raises(MastodonSourceError, match="defines major twice"):
        version_from_source(MASTODON_STYLE + "def major\n  3\nend\n")


def test_a_part_defined_as_an_expression_is_refused():
    with pytest.raises(MastodonSourceError, match="minor"):
        version_from_source(MASTODON_STYLE.replace("      3\n", "      ENV['X'].to_i\n"))


@pytest.mark.parametrize("text", [
    # Inputs that made the earlier pattern backtrack for minutes: each answers at once now.
    "def major" + " " * 4000 + "\n" * 2 + "x",
    "def major\n" + "\n" * 4000 + " " * 4000,
    ("def major (" + " " * 1000) * 4,
])
def test_hostile_input_answers_at_once(text):
    import time
    start = time.monotonic()
    with pytest.raises(MastodonSourceError):
        version_from_source(text)
    assert time.monotonic() - start < 0.5


def test_a_file_over_the_cap_is_refused():
    with pytest.raises(MastodonSourceError, match="larger than"):
        version_from_source(MASTODON_STYLE + "#" * (ms.MAX_SOURCE_BYTES + 1))


def test_unicode_digits_are_not_numbers():
    with pytest.raises(MastodonSourceError):
        version_from_source(MASTODON_STYLE.replace("      4\n", "      \u0664\n"))
    with pytest.raises(ms.MastodonSourceError):
        ms.parse_version("\u0664.3.1")


@pytest.mark.parametrize("version, recorded, running, problems", [
    ("4.3.2", None, None, 0),
    ("4.3.2", "4.3.2", "4.3.2", 0),
    ("4.4.0", "4.3.2", "4.3.2", 0),       # an upgrade under way: the checkout is ahead
    ("4.1.0", "4.3.2", None, 1),          # written backwards: Makara mode forced
    ("4.1.0", None, "4.3.2", 1),
    ("4.1.0", "4.3.2", "4.3.2", 2),
])
def test_a_checkout_that_goes_backwards_is_refused(version, recorded, running, problems):
    found = ms.version_regressions(version, recorded, running, "/var/lib/fediops-mastodon/checkout.json")
    assert len(found) == problems
    assert all("version.rb says %s" % version in problem for problem in found)


def test_newest():
    assert ms.newest(None, "4.3.2", "", "4.10.0", "4.9.9") == "4.10.0"
    assert ms.newest(None, "") is None
