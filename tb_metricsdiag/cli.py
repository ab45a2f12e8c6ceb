"""Placeholder until the command line lands (issue 4)."""

import sys


def main(argv=None):
    print("tb-metricsdiag report: not implemented yet", file=sys.stderr)
    return 2
