"""gtest.py - a tiny runner for the end-to-end scripts: named checks, a plain
'N passed, N failed' closing line (read by CI), exit 1 on any failure."""
import sys
import traceback

_results = []


def check(name, cond, detail=""):
    _results.append((name, bool(cond)))
    print("%s %s%s" % ("PASS" if cond else "FAIL", name, "" if cond else ": %s" % (detail,)),
          flush=True)
    return bool(cond)


def case(fn):
    """Runs fn(); an exception counts as one failure named after fn."""
    try:
        fn()
    except Exception:
        traceback.print_exc()
        check(fn.__name__, False, "raised")
    return fn


def finish():
    passed = sum(1 for _, ok in _results if ok)
    failed = len(_results) - passed
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed or not _results else 0)
