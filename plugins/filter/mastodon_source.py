# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: mastodon_version_from_source
short_description: The Mastodon version a checkout's lib/mastodon/version.rb declares
description:
  - Reads the C(major), C(minor) and C(patch) methods of Mastodon's C(lib/mastodon/version.rb), as a string such
    as C(4.5.0). C(playbooks/scale.yml) reads it from each application host when C(mastodon_version) is not set.
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
- name: Read the version of the checkout
  ansible.builtin.slurp:
    src: /home/mastodon/live/lib/mastodon/version.rb
  register: version_rb

- name: Keep it
  ansible.builtin.set_fact:
    mastodon_version: "{{ version_rb.content | b64decode | fediops.mastodon.mastodon_version_from_source }}"
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
