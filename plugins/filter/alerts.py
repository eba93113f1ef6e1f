# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters alert_rules and alert_exporter_extras for the metrics role (logic in module_utils/alerts.py).

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.alerts import AlertError, exporter_extras, rules
from ansible_collections.fediops.mastodon.plugins.module_utils.doctor import DoctorError


def alert_rules(thresholds=None, for_="5m", window="5m"):
    try:
        return rules(thresholds or {}, for_, window)
    except (AlertError, DoctorError) as exc:
        raise AnsibleFilterError("alert_rules: %s" % exc) from exc


def alert_exporter_extras(_input=None):
    return exporter_extras()


class FilterModule:
    def filters(self):
        return {
            "alert_rules": alert_rules,
            "alert_exporter_extras": alert_exporter_extras,
        }
