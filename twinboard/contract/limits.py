"""The admin's limits on RunSpec: ``<logdir>/.twinboard/limits.json``, checked before a launch.

Every number a visitor puts in a RunSpec has a limit (its field's ``maximum``, or a BUDGETS entry for
what several fields cost together). The file overrides the built-in defaults name by name, e.g.
``{"epochs": 200, "parameters": 2000000}``, and may set a limit anywhere from the default RunSpec's
own value (every launch starts from it: a lower limit would refuse the untouched form) up to the
hard ceiling in code (``CEILINGS``), never above.

Who checks what. RunSpec itself checks the hard ceilings, in every process: the dashboard, the CLI
and each trainer reading spec.json. The admin's limits are checked only on the dashboard's side,
before a run folder exists: the Launch form (``field_bounds`` gives its widgets' bounds), the CLI
and the launcher (``check_spec``). The trainers do not read this file, on purpose:
- A launched run was accepted. Its trainers start later, one may wait in the queue behind other
  runs; an admin lowering a limit in between would fail one half of a matched pair, or both, after
  the user was told it launched.
- A trainer finds the logdir only by convention (TWINBOARD_LOGDIR, or its run folder's parent),
  and on a cluster node neither need be the dashboard's: it would check other limits than the form
  showed, or none, and the two halves of a pair could disagree.
- Whoever can write a spec.json into the logdir can write limits.json beside it: checking it again
  in the trainer would stop no one. The ceilings stay in the trainer, as what the code survives.

A limits file that exists but cannot be used (not JSON, an unknown name, a value out of range) is
an error, not a silent fall-back to the defaults: every check refuses, naming the file and entry,
until an admin fixes it. A limit too high would be the only thing the file protects against.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Mapping

from twinboard.contract.costs import BUDGETS, check_costs, spec_costs
from twinboard.contract.files import read_json, write_json
from twinboard.contract.spec import CEILINGS, DEFAULT_LIMITS, RunSpec, SpecError, check_fields

LIMITS_DIR = ".twinboard"  # <logdir>/.twinboard/: the server's own settings, not a run (dot: not listed)
LIMITS_JSON = "limits.json"
MAX_LIMITS_BYTES = 64 * 1024  # every limit set fits in 1 KB; the rest is room for hand formatting
SERVER_NOTE = " (this server's limit)"

_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}


class LimitsError(SpecError):
    """The limits file, or a change to it, cannot be used; `field` is the limit's name when it is one's."""


def limits_path(logdir: str | os.PathLike) -> Path:
    return Path(logdir) / LIMITS_DIR / LIMITS_JSON


def _is_float(name: str) -> bool:
    return name in _FIELDS and _FIELDS[name].type == "float"


def _floor(name: str) -> float:
    """The least a limit may be: the default RunSpec's own value or cost, and the field's minimum."""
    default = RunSpec()
    if name in BUDGETS:
        counts = {"hidden_layers": len(default.hidden), "embedding_exports": len(default.embedding_steps)}
        amount = counts[name] if name in counts else spec_costs(default)[name][0]
        return max(BUDGETS[name].minimum, amount)
    value = getattr(default, name)
    value = max(value, default=0) if isinstance(value, tuple) else value
    if name == "steps":  # the steps limit caps the total steps too, the default's 10 epochs included
        value = max(value, spec_costs(default)["steps"][0])
    return max(_FIELDS[name].metadata["minimum"], value)


def check_limit(name: Any, value: Any, where: str = "") -> float:
    """`value` as limit `name`, or LimitsError naming both; `where` prefixes the message (a file)."""
    if not isinstance(name, str) or name not in DEFAULT_LIMITS:
        raise LimitsError(f"{where}{str(name)[:100]!r}: no such limit; the limits are "
                          f"{', '.join(sorted(DEFAULT_LIMITS))}", str(name)[:100], value, "no such limit")

    def bad(why: str) -> LimitsError:
        return LimitsError(f"{where}limit {name}={str(value)[:100]}: {why}", name, value, why)

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad("must be a number")
    if not _is_float(name) and not isinstance(value, int):
        raise bad("must be a whole number")
    floor, ceiling = _floor(name), CEILINGS[name]
    if not math.isfinite(value) or value > ceiling:
        raise bad(f"must be <= {ceiling}, the built-in ceiling")
    if value < floor:
        raise bad(f"must be >= {floor}: the default RunSpec needs that much, and every launch starts from it")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    """The file's entries as written ({} when there is no file); LimitsError when it cannot be read."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LimitsError(f"{path}: cannot read it ({exc}); launches are refused until it is fixed") from None
    if size > MAX_LIMITS_BYTES:
        raise LimitsError(f"{path}: {size} bytes, more than a limits file may have ({MAX_LIMITS_BYTES}); "
                          f"launches are refused until it is fixed")
    data = read_json(path)
    if data is None:
        if not path.exists():  # removed between the stat and the read
            return {}
        raise LimitsError(f"{path}: not a JSON object; launches are refused until it is fixed or removed")
    return data


def load_limits(logdir: str | os.PathLike) -> dict[str, float]:
    """Limit name -> maximum: the defaults, overridden by the logdir's limits file where it says so.

    LimitsError (a SpecError, so every front end shows it) for a file that is there but unusable."""
    path = limits_path(logdir)
    limits = dict(DEFAULT_LIMITS)
    for name, value in _read_file(path).items():
        limits[name] = check_limit(name, value, f"{path}: ")
    return limits


def save_limits(logdir: str | os.PathLike, changes: Mapping[str, float | None]) -> dict[str, float]:
    """Set limits (None: back to the default), validated, merged into the file, written atomically.

    Every entry of the result is checked, those already in the file too, so a save never leaves a file
    that load_limits refuses; a bad entry already there is dropped by passing it as None. Returns
    the limits now in force. LimitsError, file untouched, for any bad name or value."""
    if not isinstance(changes, Mapping):
        raise LimitsError(f"limit changes must be a mapping of name to number, not {type(changes).__name__}")
    path = limits_path(logdir)
    merged = {**_read_file(path), **changes}
    kept = {name: check_limit(name, value) for name, value in merged.items() if value is not None}
    # 0700 as twinboard.auth makes it (its users and secret live here too); not parents: the logdir
    # itself must exist, a mistyped one is not created.
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_json(path, kept)
    return {**DEFAULT_LIMITS, **kept}


def check_spec(spec: RunSpec, logdir: str | os.PathLike) -> None:
    """SpecError naming the field when `spec` passes one of the logdir's limits (RunSpec itself only
    checks the ceilings). The dashboard's side calls this before a launch: form, CLI, launcher."""
    if not isinstance(spec, RunSpec):
        raise TypeError(f"check_spec takes a RunSpec, not {type(spec).__name__}")
    limits = load_limits(logdir)
    check_fields({name: getattr(spec, name) for name in _FIELDS}, limits, SERVER_NOTE)
    check_costs(spec, limits, SERVER_NOTE)


def _number(value: Any, whole: bool) -> bool:
    return not isinstance(value, bool) and isinstance(value, int if whole else (int, float))


def check_values(values: Mapping[str, Any], logdir: str | os.PathLike) -> None:
    """check_spec for raw field values, before a RunSpec is built from them (the CLI's flags, a form):
    a value past the ceiling is past this server's lower limit too, and the user should hear the
    limit that applies. Values of the wrong type are left to RunSpec to refuse."""
    limits, typed = load_limits(logdir), {}
    for name, value in values.items():
        meta = _FIELDS[name].metadata if name in _FIELDS else {}
        if "items" in meta and isinstance(value, (list, tuple)):
            # Too many items is refused on the count alone, before a million of them are looked at.
            if len(value) > limits[meta["items"]] or all(_number(v, True) for v in value):
                typed[name] = tuple(value)
        elif "maximum" in meta and _number(value, not _is_float(name)):
            typed[name] = value
    check_fields(typed, limits, SERVER_NOTE)


def field_bounds(name: str, logdir: str | os.PathLike | None = None, *,
                 limits: Mapping[str, float] | None = None) -> tuple[float | None, float | None]:
    """(minimum, maximum) of RunSpec field `name` (of each item, for hidden and embedding_steps), or of
    a BUDGETS count such as hidden_layers: a form widget's min_value and max_value.

    The maximum is the logdir's limit (the built-in default without a logdir, or from `limits`, a
    load_limits result, when a caller reads the file once for many widgets). Floats come back as
    floats, as Streamlit's number_input wants its bounds typed like its value. An open end (lr's 0
    and 10) is given as is: the widget allows it and RunSpec refuses it, saying so. (None, None) for
    a field with no bounds (task, model, ...); ValueError for a name that is neither."""
    if limits is None:
        limits = DEFAULT_LIMITS if logdir is None else load_limits(logdir)
    if name in BUDGETS:
        return BUDGETS[name].minimum, limits[name]
    if name not in _FIELDS:
        raise ValueError(f"{str(name)[:100]!r}: not a RunSpec field nor a limit")
    meta = _FIELDS[name].metadata
    if "maximum" not in meta:
        return None, None
    if _is_float(name):
        return float(meta["minimum"]), float(limits[name])
    return meta["minimum"], limits[name]
