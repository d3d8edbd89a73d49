"""Checks the output of schemathesis's run without a key.

Reads the run's console output on standard input and spec/openapi.yaml, and
exits non-zero unless the operations schemathesis reports as answering only
401 are exactly the secured operations of the spec, and nothing else failed.
"""

import re
import sys

import yaml

METHODS = ("get", "put", "post", "delete", "patch")


def secured_operations(spec):
    default = spec.get("security", [])
    found = set()
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            # An operation's own `security` replaces the document's; `[]`
            # (or a list holding `{}`) makes it public.
            security = op.get("security", default)
            if security and all(requirement for requirement in security):
                found.add(f"{method.upper()} {path}")
    return found


def reported_operations(output):
    match = re.search(r"^401 Unauthorized \((\d+) operations?\):\n((?:  - .*\n)+)", output, re.M)
    if not match:
        return None
    return {line.strip()[2:] for line in match.group(2).splitlines()}


def main():
    spec_path, output = sys.argv[1], sys.stdin.read()
    with open(spec_path, encoding="utf-8") as f:
        expected = secured_operations(yaml.safe_load(f))
    reported = reported_operations(output)
    problems = []
    if reported is None:
        problems.append("schemathesis reported no operation answering only 401")
        reported = set()
    for op in sorted(expected - reported):
        problems.append(f"secured but not refused without a key: {op}")
    for op in sorted(reported - expected):
        problems.append(f"public but refused without a key: {op}")
    if re.search(r"^(Failures|Errors):", output, re.M):
        problems.append("the run without a key found failures or errors besides missing_auth")
    if problems:
        print("missing_auth: FAILED", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"missing_auth: all {len(expected)} secured operations refused a request without a key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
