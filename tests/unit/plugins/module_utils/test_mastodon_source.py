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
