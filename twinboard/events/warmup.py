"""`python -m twinboard.events.warmup`: compile and save the fast event decoder during set-up, so no user
waits for the compiler (seconds to a minute) on their first click."""
from __future__ import annotations

import sys
import time


def main() -> int:
    from twinboard.events import fastscan, native

    t = time.perf_counter()
    ok = fastscan.warm()
    took = time.perf_counter() - t
    if ok:
        print(f"twinboard: fast event decoder ready ({took:.1f} s)")
    else:
        why = "TWINBOARD_NO_JIT is set" if native.JIT_DISABLED else repr(native._state.get("error"))
        print(f"twinboard: fast event decoder unavailable ({why}); event files are read with "
              "protobuf instead (slower, same results)", file=sys.stderr)
    return 0  # set-up goes on either way: the protobuf path is always there


if __name__ == "__main__":
    sys.exit(main())
