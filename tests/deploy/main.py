"""Entry point of the deployment tests: tests/deploy/run.sh calls it with the binary path."""

from __future__ import annotations

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import Results  # noqa: E402


def main() -> int:
    binary = os.path.abspath(sys.argv[1])
    res = Results()
    for module in ("helm_checks", "jitsi_helm_checks", "compose_checks", "systemd_checks"):
        try:
            __import__(module).run(res, binary)
        except Exception:  # a crash in one group is a failure, and the others still run
            traceback.print_exc()
            res.check(f"{module} ran to the end", False, "exception above")
    if res.failures:
        print("failed checks:")
        for name in res.failures:
            print(f"  - {name}")
    print(f"deploy: {res.skipped} skipped")
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
