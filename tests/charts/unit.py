"""Runs the chart unit tests (test_*.py here), lists each skipped test with
its reason (`skip TEST: REASON`), and ends with one line,
`unit: N passed, M failed` (`, K skipped` when any was), that run.sh adds to its own count."""

import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in the work tree

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
suite = unittest.defaultTestLoader.discover(str(here), pattern="test_*.py", top_level_dir=str(here))
result = unittest.TextTestRunner(verbosity=int(sys.argv[1]) if sys.argv[1:] else 1).run(suite)
# A test with failing subtests counts once.
failed = len({getattr(t, "test_case", t).id() for t, _ in result.failures + result.errors}
             | {t.id() for t in result.unexpectedSuccesses})
skipped = len(result.skipped)
for test, reason in result.skipped:
    print(f"skip {test.id()}: {reason}")
print(f"unit: {result.testsRun - failed - skipped} passed, {failed} failed"
      + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
