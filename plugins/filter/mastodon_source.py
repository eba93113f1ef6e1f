# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: mastodon_version_from_source
short_description: The Mastodon version a checkout's lib/mastodon/version.rb declares
description:
  - Reads the C(major), C(minor) and C(patch) methods of Mastodon's C(lib/mastodon/version.rb), as a string such
    as C(4.5.0), line by line with bounded patterns; comments never count.
  - To read a host's checkout, use the module M(fediops.mastodon.mastodon_checkout), which reaches the file
    through the collection's safe walk.
  - Fails when one of the three is not defined as a number, for example when the file is not Mastodon's.
version_added: 0.1.0
options:
  _input:
    description: The text of C(lib/mastodon/version.rb).
    type: str
    required: true
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
# The text comes from the checkout through fediops.mastodon.mastodon_checkout (the checkout is the mastodon
# user's: never slurp it); this filter parses a text you already have, such as a release's version.rb.
- name: Parse a version.rb text
  ansible.builtin.set_fact:
    release_version: "{{ version_rb_text | fediops.mastodon.mastodon_version_from_source }}"
"""

RETURN = r"""
_value:
  description: The version, C(major.minor.patch).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_source import (
    MastodonSourceError, version_from_source)


def mastodon_version_from_source(text):
    try:
        return version_from_source(text)
    except MastodonSourceError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"mastodon_version_from_source": mastodon_version_from_source}
