"""The config round trip: every service config a chart renders, over the whole
values matrix, is accepted by `fiscus <service> --check-config FILE
--skip-files` (keys, types and values; the files it names are Secrets mounted
at run time, so they are not checked here). The chart and the binary cannot
drift apart. Then the same for every config `fiscus-operator render` writes
for the Hebei operator example, and the operator's workloads and Services
against the member chart's (check_operator.py). Needs both binaries:
FISCUS_BIN, default target/debug/fiscus, and FISCUS_OPERATOR_BIN, default
target/debug/fiscus-operator.

Run: python3 tests/charts/check_configs.py  (make test runs it after the build)."""

import os
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from charts_lib import REPO, check_config, of_kind, render, values_matrix  # noqa: E402
import check_operator  # noqa: E402

SERVICES = {"identity-ca", "orderer", "ledger-store", "contract-executor",
            "gossip-gateway", "exchange-adapter"}


def main():
    fiscus = os.environ.get("FISCUS_BIN", str(REPO / "target" / "debug" / "fiscus"))
    if not os.access(fiscus, os.X_OK):
        print(f"check_configs.py: {fiscus} is missing; build it with 'cargo build -p fiscus'",
              file=sys.stderr)
        return 1
    passed, failed, seen = 0, 0, set()
    with tempfile.TemporaryDirectory() as tmp:
        for chart, values in values_matrix():
            for cm in of_kind(render(chart, (values,)), "ConfigMap"):
                for key, text in (cm.get("data") or {}).items():
                    service = key.removesuffix(".toml")
                    if not key.endswith(".toml") or service not in SERVICES:
                        continue
                    seen.add(service)
                    f = Path(tmp) / f"{chart}-{Path(values).stem}-{cm['metadata']['name']}-{key}"
                    name = f"{chart} {Path(values).name} {cm['metadata']['name']}/{key}"
                    if check_config(fiscus, service, text, f, name):
                        passed += 1
                    else:
                        failed += 1
    missing = SERVICES - seen
    if missing:
        failed += 1
        print(f"FAIL no chart renders a config for: {', '.join(sorted(missing))}")
    with tempfile.TemporaryDirectory() as tmp:
        p, f = check_operator.run(fiscus, tmp)
    passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
