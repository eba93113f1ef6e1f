# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters doctor_findings and doctor_report_lines for playbooks/doctor.yml.

This file exports several filters, so each one is documented in its own plugins/filter/<filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.doctor import DoctorError, findings, report_lines


def doctor_findings(observations, thresholds=None):
    try:
        return findings(observations, thresholds)
    except (DoctorError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("doctor_findings: %s" % exc) from exc


def doctor_report_lines(found):
    try:
        return report_lines(found)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError("doctor_report_lines: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {
            "doctor_findings": doctor_findings,
            "doctor_report_lines": doctor_report_lines,
        }
