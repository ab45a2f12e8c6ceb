"""The JUnit XML output of the report, for CI systems that read test reports. Pure: no I/O."""

import socket
import time
import xml.etree.ElementTree as ElementTree

from tb_metricsdiag.report_formats.common import (
    SEVERITY_RANK,
    at_epoch,
    number,
    safe_text,
    subject,
    verdict,
)
from tb_metricsdiag.report_formats.text import text_result


def format_junit(reports, fail_on="error"):
    """JUnit XML for CI systems that read test reports: one ``testsuite`` per run, holding one
    ``testcase`` per requirement result (failed: a ``failure``; not applicable: ``skipped``)
    and one per finding at or above ``fail_on`` (always a ``failure``). The attributes the common JUnit schemas require
    are set: ``testsuites``/``testsuite`` ``name``, ``tests``, ``failures``, ``errors``,
    ``skipped``, ``time`` (and ``timestamp``, ``hostname``); ``testcase`` ``name``,
    ``classname``, ``time``; ``failure`` ``message`` and ``type``.
    """
    threshold = SEVERITY_RANK[fail_on]
    root = ElementTree.Element("testsuites", name="tb-metricsdiag")
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    all_tests = all_failures = all_skipped = 0
    for report in reports:
        run = safe_text(report["run"])
        suite = ElementTree.SubElement(
            root, "testsuite", name=run, timestamp=timestamp, hostname=socket.gethostname()
        )
        tests = failures = skipped = 0
        for result in report.get("requirements", ()):
            case = ElementTree.SubElement(
                suite,
                "testcase",
                name=safe_text(subject(result)),
                classname="tb-metricsdiag.requirements",
                time="0",
            )
            tests += 1
            if not result["applicable"]:
                skipped += 1
                ElementTree.SubElement(
                    case,
                    "skipped",
                    message=safe_text("%s: %s" % (verdict(result), result["reason"])),
                )
            elif not result["passed"]:
                failures += 1
                failure = ElementTree.SubElement(
                    case,
                    "failure",
                    message=safe_text(
                        "%s: %s is not %s %s"
                        % (
                            subject(result),
                            number(result["value"]),
                            result["op"],
                            number(result["bound"]),
                        )
                    ),
                    type="requirement",
                )
                failure.text = text_result(result)
        for finding in report["findings"]:
            if SEVERITY_RANK[finding["severity"]] < threshold:
                continue
            case = ElementTree.SubElement(
                suite,
                "testcase",
                name=safe_text("%s%s" % (finding["rule"], at_epoch(finding))),
                classname="tb-metricsdiag.findings",
                time="0",
            )
            tests += 1
            failures += 1
            failure = ElementTree.SubElement(
                case,
                "failure",
                message=safe_text(finding["title"]),
                type="%s finding" % finding["severity"],
            )
            # safe_text also drops what XML 1.0 cannot hold (most control characters).
            failure.text = "%s\nfix: %s" % (
                safe_text(finding["detail"]),
                safe_text(finding["suggestion"]),
            )
        _set_totals(suite, tests, failures, skipped)
        all_tests += tests
        all_failures += failures
        all_skipped += skipped
    _set_totals(root, all_tests, all_failures, all_skipped)
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def _set_totals(element, tests, failures, skipped):
    """The totals the JUnit schemas require of a ``testsuite`` or ``testsuites``: the counts,
    no errors and no time (nothing is timed).
    """
    for name, value in (
        ("tests", tests),
        ("failures", failures),
        ("errors", 0),
        ("skipped", skipped),
        ("time", 0),
    ):
        element.set(name, str(value))
