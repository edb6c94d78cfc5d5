"""Which torch tensor is which Keras variable, for a model plugin (trainers.models.plugins): the
declared correspondence first, then the automatic rule for every tensor left. numpy only: the
preflight (trainers.models.preflight) hands in names, shapes and trainable flags read from the two
built models, and the tests hand in plain tuples.

The automatic rule. torch's state_dict name splits into a module path and a part ("block0.fc" and
"weight"), Keras' variable path into a layer path and a part ("block0_fc" and "kernel"). A torch
tensor and a Keras variable are a pair when
  1. the module path with "." read as "_" is the layer path with "/" read as "_" (torch "block0.fc"
     is Keras "block0_fc" or "block0/fc");
  2. the parts are the same part under each framework's name (PARTS: weight is kernel, gamma,
     embeddings or weight; bias is bias or beta; running_mean is moving_mean; running_var is
     moving_variance; any other part keeps its name);
  3. and the shapes fit the transform the names give (AUTO_TRANSFORM: a kernel of rank 2 is a Linear
     weight, transposed; rank 3 and 4 are Conv1d / Conv2d weights; everything else is the same array).
Exactly one Keras variable may pass 1-2 (shapes break a tie: only the candidates 3 accepts count);
none or two are refused, and so is a tensor whose shape the transform does not give. A square
[n, n] weight is never a coin toss: the names pick the transform, the shape only checks it.

Every trainable tensor on each side needs its counterpart. torch buffers (BatchNorm's running
statistics) pair by the same rule when Keras has them and are left out (listed) when it does not,
as are Keras' non-trainable variables without a torch tensor (a Dropout's seed state), and integer
buffers (num_batches_tracked) always: the optimizer touches neither.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

PARTS = {"weight": ("kernel", "gamma", "embeddings", "weight"), "bias": ("bias", "beta"),
         "running_mean": ("moving_mean",), "running_var": ("moving_variance",)}
CONV_RANKS = {2: "transpose", 3: "conv1d_kernel", 4: "conv_kernel"}  # a torch weight's rank -> kernel transform
MAX_NAMED = 3  # unclaimed tensors a refusal lists as the likely counterparts


@dataclass(frozen=True)
class Tensor:
    """One tensor as a side reports it: its name (torch) or path (Keras), shape and trainable flag."""
    name: str
    shape: tuple[int, ...]
    trainable: bool


@dataclass(frozen=True)
class Entry:
    """One matched pair, as plan.json lists it."""
    torch: str
    shape: list[int]  # torch's layout
    keras: str
    keras_shape: list[int]
    transform: str  # a TRANSFORMS name or a function of the plugin (trainers.models.plugins.transform)
    tag: str  # "<layer>/<part>": the histograms' tag on both sides, the layers table's row
    trainable: bool
    how: str  # "declared" or "auto"


class MatchError(ValueError):
    """A pair the trainers cannot train: every problem (each names both tensors where there are two)
    and the table of both sides' tensors (`rows`), the refusal's aligned layer table."""

    def __init__(self, problems: list[str], rows: list[dict]):
        more = f" (and {len(problems) - 1} more problem{'s' * (len(problems) > 2)})" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)
        self.problems, self.rows = problems, rows


def split(name: str, sep: str) -> tuple[str, str]:
    """("block0.fc", "weight") of "block0.fc.weight"; ("", "pos") of a top-level "pos"."""
    head, _, part = name.rpartition(sep)
    return head, part


def torch_key(name: str) -> tuple[str, str]:
    module, part = split(name, ".")
    return module.replace(".", "_"), part


def keras_key(path: str) -> tuple[str, str]:
    layer, part = split(path, "/")
    return layer.replace("/", "_"), part


def tag_of(path: str) -> str:
    """The histogram tag of a Keras path: "<layer>/<part>", inner folders joined by "_"."""
    layer, part = keras_key(path)
    return f"{layer or part}/{part if layer else 'value'}"


def auto_transform(torch_name: str, keras_path: str, rank: int) -> str:
    """The transform the names give: torch weight -> Keras kernel by the weight's rank, else "same"."""
    if split(torch_name, ".")[1] == "weight" and keras_key(keras_path)[1] == "kernel":
        return CONV_RANKS.get(rank, "same")
    return "same"


def _shape_text(shape) -> str:
    return str(list(shape))


def match(torch: Mapping[str, Tensor], keras: Mapping[str, Tensor], declared: Mapping[str, tuple[str, str | None]],
          resolve: Callable[[str], Callable[[np.ndarray], np.ndarray]]) -> tuple[list[Entry], dict[str, list[str]]]:
    """The plan's entries in torch's order, and what each side leaves out (non-trainable only).

    `declared`: torch name -> (Keras path, transform name or None for the rule's). `resolve` turns a
    transform name into its function (KeyError: unknown). MatchError with every problem otherwise."""
    problems: list[str] = []  # the declaration's, then each torch tensor's in torch's order, then Keras'
    of_torch: dict[str, str] = {}  # torch name -> its problem
    claimed: dict[str, str] = {}  # Keras path -> torch name
    found: dict[str, tuple[str, str, str]] = {}  # torch name -> (Keras path, transform, how)

    for name, (path, transform) in declared.items():
        where = f"CORRESPONDENCE: {name} (torch) <-> {path} (Keras)"
        if name not in torch or path not in keras:
            problems.append(f"{where}: " + (f"the torch model has no {name}" if name not in torch
                                            else f"the Keras model has no variable {path}"))
        elif path in claimed:
            problems.append(f"{where}: {path} is declared for {claimed[path]} (torch) too")
        else:
            claimed[path] = name
            found[name] = (path, transform or auto_transform(name, path, len(torch[name].shape)), "declared")

    by_key: dict[tuple[str, str], list[str]] = {}
    for path in keras:
        by_key.setdefault(keras_key(path), []).append(path)
    for name, t in torch.items():
        if name in found or name in declared:
            continue
        module, part = torch_key(name)
        names = [path for kpart in PARTS.get(part, (part,)) for path in by_key.get((module, kpart), ())
                 if path not in claimed]
        fits = [p for p in names if _fits(resolve, auto_transform(name, p, len(t.shape)), t.shape, keras[p].shape)]
        pick = fits if len(names) > 1 else names  # one by name: its shape is checked below, naming both
        if len(pick) == 1:
            claimed[pick[0]] = name
            found[name] = (pick[0], auto_transform(name, pick[0], len(t.shape)), "auto")
        elif names:
            how = "and shape" if pick else "but no shape fits"
            of_torch[name] = (f"{name} (torch {_shape_text(t.shape)}) matches {' and '.join(pick or names)} (Keras) "
                              f"by name {how}: declare which in CORRESPONDENCE")
        elif t.trainable:
            looked = " or ".join(f"{module or '<top>'}/{k}" for k in PARTS.get(part, (part,)))
            of_torch[name] = (f"torch parameter {name} {_shape_text(t.shape)} has no Keras counterpart: no "
                              f"unclaimed Keras variable {looked}; "
                              + _unclaimed("Keras", keras, set(claimed), t.shape))

    entries, refused = [], {}  # refused: torch name -> (Keras path, why), pairs found whose tensors disagree
    for name, t in torch.items():
        if name not in found:
            continue
        path, transform, how = found[name]
        k = keras[path]
        try:
            fn = resolve(transform)
        except KeyError as err:
            refused[name] = (path, err.args[0])
            continue
        want = _transformed(fn, t.shape)
        if want != tuple(k.shape):
            refused[name] = (path, f"transform {transform} " + ("fails on that shape" if want is None
                                                               else f"gives {_shape_text(want)}"))
        elif t.trainable != k.trainable:
            refused[name] = (path, f"trainable on the {'torch' if t.trainable else 'Keras'} side only")
        else:
            entries.append(Entry(name, list(t.shape), path, list(k.shape), transform, tag_of(path), t.trainable, how))
    for name, (path, why) in refused.items():
        of_torch[name] = (f"{name} (torch {_shape_text(torch[name].shape)}) <-> {path} "
                          f"(Keras {_shape_text(keras[path].shape)}): {why}")
    problems += [of_torch[name] for name in torch if name in of_torch]

    unclaimed = [p for p in keras if p not in claimed]
    for path in unclaimed:
        if keras[path].trainable:
            problems.append(f"Keras variable {path} {_shape_text(keras[path].shape)} has no torch counterpart; "
                            + _unclaimed("torch", torch, set(found), None))
    tags: dict[str, str] = {}
    for e in entries:
        if e.tag in tags:
            problems.append(f"{tags[e.tag]} and {e.keras} (Keras) both read as histogram tag {e.tag}: rename a layer")
        tags[e.tag] = e.keras
    if problems:
        raise MatchError(problems, rows(torch, keras, entries, refused))
    left_out = {"torch": [n for n in torch if n not in found], "keras": [p for p in unclaimed]}
    return entries, left_out


def _fits(resolve, transform: str, shape, keras_shape) -> bool:
    try:
        return _transformed(resolve(transform), shape) == tuple(keras_shape)
    except KeyError:
        return False


def _transformed(fn, shape) -> tuple[int, ...] | None:
    try:
        return tuple(np.shape(fn(np.zeros(shape))))
    except Exception:  # noqa: BLE001 - a plugin's transform that cannot take the shape: a mismatch
        return None


def _unclaimed(side: str, tensors: Mapping[str, Tensor], taken: set[str], near: tuple[int, ...] | None) -> str:
    """The other side's unclaimed trainable tensors, those of a matching size first: where the
    counterpart most likely is (named so the message names both)."""
    left = [n for n, t in tensors.items() if n not in taken and t.trainable]
    if near is not None:
        size = int(np.prod(near))
        left.sort(key=lambda n: int(np.prod(tensors[n].shape)) != size)
    if not left:
        return f"every {side} tensor has its counterpart"
    shown = ", ".join(f"{n} {_shape_text(tensors[n].shape)}" for n in left[:MAX_NAMED])
    more = f" and {len(left) - MAX_NAMED} more" if len(left) > MAX_NAMED else ""
    return f"unclaimed {side} tensors: {shown}{more}"


def rows(torch: Mapping[str, Tensor], keras: Mapping[str, Tensor], entries: list[Entry],
         refused: Mapping[str, tuple[str, str]] | None = None) -> list[dict]:
    """Both sides aligned in torch's order, then the Keras variables nothing claimed. Keys: torch,
    torch_shape, keras, keras_shape, transform, trainable, status ("declared", "auto", the reason a
    pair found by name was refused, or "no counterpart")."""
    matched, refused = {e.torch: e for e in entries}, refused or {}
    out, seen = [], set()
    for name, t in torch.items():
        e = matched.get(name)
        path = e.keras if e else refused[name][0] if name in refused else None
        seen.add(path)
        out.append(dict(torch=name, torch_shape=list(t.shape), keras=path,
                        keras_shape=list(keras[path].shape) if path else None, transform=e.transform if e else None,
                        trainable=t.trainable,
                        status=e.how if e else refused[name][1] if name in refused else "no counterpart"))
    out += [dict(torch=None, torch_shape=None, keras=p, keras_shape=list(k.shape), transform=None,
                 trainable=k.trainable, status="no counterpart") for p, k in keras.items() if p not in seen]
    return out


def entry_dicts(entries: list[Entry]) -> list[dict]:
    return [asdict(e) for e in entries]
