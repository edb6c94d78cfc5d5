"""Sign-in with a growing delay after failures, so guessing a password from the sign-in form is slow.

After the n-th failed attempt for a name, that name is refused for min(2**(n-1), 30) seconds
(1, 2, 4, 8, 16, 30, 30 ... s); a success clears it, and so does an hour without failures.

Why refuse instead of sleeping: a Streamlit session is a thread of the server, and a sleeping
thread per attempt would let a visitor tie up the server for free; a refusal costs nothing and tells
the page what to show ("wait N s"). Why per name and counted for unknown names too: the delay must
not tell a visitor which names exist. The attempt counts as a failure from the moment it starts, so
many sessions firing at one name at once get one guess, not one each.

State is in memory (a restart forgets it; the argon2 cost, ~0.1 s a guess, remains) and bounded:
at most MAX_TRACKED names, oldest forgotten first.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from twinboard.auth.audit import record
from twinboard.auth.users import NAME_RE, User, verify

MAX_DELAY_S = 30.0
FORGET_AFTER_S = 3600.0  # a name with no failure for this long starts again at 1 s
SIGN_IN, SIGN_IN_FAILED = "sign_in", "sign_in_failed"  # audit log actions (a refusal while waiting is not logged)
MAX_TRACKED = 10_000  # names remembered at once (a visitor can try names without end; memory cannot)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: truthy when it let the user in."""
    user: User | None  # None: refused
    reason: str = ""  # why not, in words the sign-in form can show
    wait_s: float = 0.0  # how long until this name may try again

    def __bool__(self) -> bool:
        return self.user is not None


@dataclass
class _Failures:
    count: int  # failed attempts in a row (the one in progress included)
    last: float  # monotonic s of the latest attempt
    until: float  # monotonic s before which the name is refused


_failures: OrderedDict[str, _Failures] = OrderedDict()
_lock = threading.Lock()


def delay_after(failures: int) -> float:
    """Seconds a name waits after `failures` failed attempts in a row: 0, 1, 2, 4 ... capped at 30."""
    return 0.0 if failures <= 0 else min(MAX_DELAY_S, 2.0 ** (failures - 1))


def sign_in(name: str, password: str, *, logdir=None, now=time.monotonic) -> SignIn:
    """Check `password` for `name`, unless the name is still waiting out earlier failures; successes
    and failures go to the audit log. `now` is the clock (a test passes its own)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        verify("", "", logdir=logdir)  # the same cost as a real attempt; nothing to track
        record(None, SIGN_IN_FAILED, str(name), logdir=logdir)
        return SignIn(None, "Wrong name or password.")
    with _lock:
        t = now()
        entry = _failures.get(name)
        if entry is not None and t - entry.last > FORGET_AFTER_S:
            entry = None
        if entry is not None and t < entry.until:
            wait = entry.until - t
            return SignIn(None, f"Too many failed sign-ins for {name}: wait {math.ceil(wait)} s.", wait)
        # Count this attempt as failed before checking it (see the module docstring).
        count = (entry.count if entry else 0) + 1
        _failures[name] = _Failures(count, t, t + delay_after(count))
        _failures.move_to_end(name)
        while len(_failures) > MAX_TRACKED:
            _failures.popitem(last=False)
    user = verify(name, password, logdir=logdir)  # ~0.1 s, outside the lock
    if user is not None:
        with _lock:
            _failures.pop(name, None)
        record(user, SIGN_IN, name, logdir=logdir)
        return SignIn(user)
    wait = delay_after(count)
    record(None, SIGN_IN_FAILED, name, logdir=logdir, failures=count)
    return SignIn(None, f"Wrong name or password. Wait {math.ceil(wait)} s before trying again.", wait)


def failures(name: str) -> int:
    """Failed attempts in a row for `name` (0 when none are remembered)."""
    with _lock:
        entry = _failures.get(name)
        return entry.count if entry else 0


def reset(name: str | None = None) -> None:
    """Forget the failures of `name`, or of every name (an admin unlocking someone; tests)."""
    with _lock:
        if name is None:
            _failures.clear()
        else:
            _failures.pop(name, None)
