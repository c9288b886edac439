"""The end every check script shares: its problems on stderr, then exit status 1, or its
one-line summary on stdout and 0."""

import sys


def verdict(label, problems, summary):
    """Prints each problem as `label: problem` on stderr and returns 1, or prints `summary`
    and returns 0 when there are none."""
    for problem in problems:
        print(f"{label}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(summary)
    return 0
