"""The layers table: two models aligned row by row (layer, type, output shape, parameters).

Read from the graphs where they can say it: parameters from the shapes of the parameter reads
(torch `prim::GetAttr` nodes, which `trainers.export_graph` gives shapes; TF `ReadVariableOp`s, one
per variable), output shapes from the op whose output leaves the layer. What a graph cannot say is
filled from the trainer's `settings.json` (`layers: [{name, type, output_shape, params}]`), and
where settings.json names a layer, it is the layer: a torch graph's scopes inside it (the
transformer's `self_attn.out_proj`, `self_attn.parametrizations.in_proj_weight`) are folded into its
one row, their parameters summed. An op with several outputs (Keras' custom-gradient IdentityN) does
not say which one leaves the layer (the graph's edges do not keep the output index): no shape is
shown for it rather than all of them.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Collection

import pandas as pd

from twinboard.contract import files
# The one rule for "same shape" (NCHW against NHWC, unknown sizes), shared with the Parity page's settings diff.
from twinboard.contract import shapes_agree
from twinboard.graphs.model import Graph
from twinboard.graphs.reader import default_graph
from twinboard.graphs.view import BRACKET, forward_only, layer_index, layer_key

COLUMNS = ["layer", "type", "output_shape", "params"]
PARAM_READS = ("prim::GetAttr", "ReadVariableOp", "VarHandleOp", "VariableV2")
NOT_OUTPUTS = (*PARAM_READS, "Const", "Placeholder", "prim::Constant", "prim::Module")
TF_TYPES = (("Conv2D", "Conv2D"), ("Conv1D", "Conv1D"), ("Conv3D", "Conv3D"), ("MatMul", "Dense"))
GUESSED = {t for _, t in TF_TYPES}
ONE_SHAPE = re.compile(r"\[[^\[\]]*\]|\?")  # "[32, 64]" or "?": one output's shape


def read_settings(folder: str | os.PathLike) -> dict | None:
    """The trainer's settings.json for the layers table (`contract.files.read_settings`), None when
    it is missing or unusable: the table is then filled from the graphs alone (the Parity page is
    the one that names a bad settings file)."""
    try:
        return files.read_settings(folder)
    except files.SettingsError:
        return None


def _numel(shape: str) -> int | None:
    dims = [d.strip() for d in shape.strip("[]").split(",") if d.strip()]
    if shape.strip() in ("", "?") or any(not d.lstrip("-").isdigit() or int(d) < 0 for d in dims):
        return None
    return math.prod(int(d) for d in dims)


def _shape_text(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return "[" + ", ".join("?" if d is None or d == -1 else str(d) for d in shape) + "]"
    return "" if shape is None else str(shape)


def layers_from_graph(graph: Graph, known: Collection[str] = ()) -> pd.DataFrame:
    """Layers of one graph, in the order their ops appear. Keras graphs give names and types only."""
    if graph.kind == "keras":
        rows = [{"layer": n, "type": op, "output_shape": "", "params": pd.NA}
                for n, op in zip(graph.nodes["name"], graph.nodes["op"]) if op != "InputLayer"]
        return pd.DataFrame(rows, columns=COLUMNS)
    g = forward_only(graph)
    layer_of: dict[str, str] = {}  # op name -> layer
    prefix_of: dict[str, str] = {}
    info: dict[str, dict] = {}
    for name, op in zip(g.nodes["name"], g.nodes["op"]):
        if op == "IO Node":  # torch's input/output markers sit in scopes named input/output
            continue
        parts = name.split("/")[:-1]
        i = layer_index(parts, known)
        if i is None:
            continue
        key, torch_type = layer_key(parts[i], known)
        path = [m.group(2) for p in parts[: i + 1] if (m := BRACKET.match(p))]
        key = ".".join(path) if path else key
        layer_of[name], prefix_of[name] = key, "/".join(parts[: i + 1])
        entry = info.setdefault(key, {"type": torch_type, "ops": set(), "params": {}, "shape": ""})
        entry["ops"].add(op)
    srcs = g.edges.groupby("dst")["src"].first().to_dict()
    shaped_params = False
    for r in g.nodes.itertuples(index=False):
        key = layer_of.get(r.name)
        if key is None or r.op not in PARAM_READS or not r.shape:
            continue
        n = _numel(r.shape)
        if n is None:
            continue
        shaped_params = True
        ident = (r.attrs or {}).get("parameter") or (srcs.get(r.name, r.name) if r.op == "ReadVariableOp" else r.name)
        info[key]["params"][ident] = n
    # Output shape: the last op of a layer whose (data) output is read outside the layer.
    shape_of = dict(zip(g.nodes["name"], g.nodes["shape"]))
    op_of = dict(zip(g.nodes["name"], g.nodes["op"]))
    for src, dst, control in zip(g.edges["src"], g.edges["dst"], g.edges["control"]):
        key = layer_of.get(src)
        if key is None or control or op_of.get(src) in NOT_OUTPUTS or not shape_of.get(src):
            continue
        if prefix_of.get(dst) != prefix_of[src]:
            info[key]["shape"] = shape_of[src] if ONE_SHAPE.fullmatch(shape_of[src]) else ""
    rows = []
    for key, e in info.items():
        typ = e["type"] or next((t for op, t in TF_TYPES if op in e["ops"]), "")
        params = sum(e["params"].values()) if shaped_params else pd.NA
        rows.append({"layer": key, "type": typ, "output_shape": e["shape"], "params": params})
    return pd.DataFrame(rows, columns=COLUMNS)


def layers_from_settings(settings: dict | None) -> pd.DataFrame:
    layers = (settings or {}).get("layers") or []
    rows = [{"layer": str(d.get("name", "")), "type": str(d.get("type") or ""),
             "output_shape": _shape_text(d.get("output_shape")),
             "params": d["params"] if isinstance(d.get("params"), int) else pd.NA}
            for d in layers if isinstance(d, dict) and d.get("name")]
    return pd.DataFrame(rows, columns=COLUMNS)


def layer_summary(graphs: list[Graph], settings: dict | None = None, known: Collection[str] = ()) -> pd.DataFrame:
    """One framework's layers: the op graph's rows, types from a Keras graph, gaps from settings.json."""
    op = default_graph([g for g in graphs if g.kind == "op"])
    keras = next((g for g in graphs if g.kind == "keras"), None)
    keras_rows = layers_from_graph(keras) if keras is not None else pd.DataFrame(columns=COLUMNS)
    if op is not None:
        table = _fill(layers_from_graph(op, [*known, *keras_rows["layer"]]), keras_rows, append=False)
    else:
        table = keras_rows
    described = layers_from_settings(settings)
    # A model plugin's rows are named after its Keras layers ("block0_fc"); torch's graph names the
    # module "block0.fc": the same layer, by the plugin matching rule (trainers.models.matching).
    names = set(described["layer"])
    table["layer"] = [n.replace(".", "_") if n not in names and n.replace(".", "_") in names else n
                      for n in table["layer"]]
    table = _fill(_fold_into(table, names), described, append=True)
    # A TF layer's type read off its ops (MatMul: "Dense") is a guess; settings.json names the layer's
    # class (a Keras RNN's MatMuls are no Dense layer)
    said = dict(zip(described["layer"], described["type"]))
    table["type"] = [said[n] if t in GUESSED and said.get(n) else t for n, t in zip(table["layer"], table["type"])]
    table["params"] = table["params"].astype("Int64")
    return _in_plan_order(table.reset_index(drop=True), list(described["layer"]))


def _in_plan_order(table: pd.DataFrame, plan: list[str]) -> pd.DataFrame:
    """The layers settings.json names in its order (the model's plan: torch's graph lists the modules
    of an encoder layer last to first); any other row stays after the named one it followed."""
    if not plan:
        return table
    order, keys, last = {n: i for i, n in enumerate(plan)}, [], -1
    for i, name in enumerate(table["layer"]):
        last = order.get(name, last)
        keys.append((last, name not in order, i))
    return table.iloc[sorted(range(len(keys)), key=keys.__getitem__)].reset_index(drop=True)


def _owner(name: str, names: Collection[str]) -> str | None:
    """The described layer that `name` is, or lies inside ("layer0.self_attn.out_proj" ->
    "layer0.self_attn"); None when none is."""
    parts = name.split(".")
    return next((".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in names), None)


def _fold_into(table: pd.DataFrame, names: Collection[str]) -> pd.DataFrame:
    """Rows of scopes inside a described layer become that layer's row (at the place of its first
    part): parameters summed (unknown if any part's is), type and shape left to settings.json."""
    owners = [_owner(n, names) for n in table["layer"]]
    inner = [o is not None and o != n for n, o in zip(table["layer"], owners)]
    if not any(inner):
        return table
    rows, placed = [], {}
    for row, owner, is_inner in zip(table.to_dict("records"), owners, inner):
        key = owner if is_inner else row["layer"]
        if key not in placed:
            placed[key] = len(rows)
            rows.append({**row, "layer": key} if not is_inner else
                        {"layer": key, "type": "", "output_shape": "", "params": row["params"]})
            continue
        kept = rows[placed[key]]
        if is_inner or pd.isna(kept["params"]) or kept["params"] == 0:  # a module's own row holds no reads
            add = row["params"]
            kept["params"] = pd.NA if pd.isna(add) or pd.isna(kept["params"]) else kept["params"] + add
        if not is_inner:
            kept.update(type=row["type"] or kept["type"], output_shape=row["output_shape"] or kept["output_shape"])
    return pd.DataFrame(rows, columns=COLUMNS)


def _fill(table: pd.DataFrame, extra: pd.DataFrame, append: bool) -> pd.DataFrame:
    """Blank cells of table filled from extra's row of the same layer; with append, extra's other
    layers added at the end."""
    if extra.empty:
        return table
    table = table.copy().astype({"params": object}).reset_index(drop=True)
    by_name = extra.drop_duplicates("layer").set_index("layer")
    for i, name in enumerate(table["layer"]):
        if name in by_name.index:
            for col in ("type", "output_shape", "params"):
                value = table.at[i, col]
                if value is None or value is pd.NA or value == "":
                    table.at[i, col] = by_name.at[name, col]
    if append:
        rest = extra[~extra["layer"].isin(table["layer"])]
        table = pd.concat([table, rest], ignore_index=True) if not table.empty else rest.copy()
    return table


def align_layers(left: pd.DataFrame, right: pd.DataFrame, labels: tuple[str, str] = ("PyTorch", "TensorFlow"),
                 keep_one_sided_empty: bool = False) -> pd.DataFrame:
    """Both sides by layer name (left's order, right-only layers after their predecessor), a total row,
    a match column. Parameter-free layers found on one side only (torch's ReLU modules, where Keras
    has the activation inside Dense) are left out unless asked for; their names are in
    `table.attrs["left_out"]`."""
    L, R = labels
    merged = left.merge(right, on="layer", how="outer", suffixes=("_l", "_r"), sort=False, indicator=True)
    one_sided = merged["_merge"] != "both"
    # 0 parameters known (an unknown count, NA, is not hidden)
    empty = merged["params_l"].eq(0).fillna(False) | merged["params_r"].eq(0).fillna(False)
    left_out = [] if keep_one_sided_empty else list(merged.loc[one_sided & empty, "layer"])
    merged = merged[~merged["layer"].isin(left_out)]
    names = list(left["layer"])  # right-only layers go in after the layer that precedes them on the right
    for j, name in enumerate(right["layer"]):
        if name not in names:
            before = [n for n in right["layer"][:j] if n in names]
            names.insert(names.index(before[-1]) + 1 if before else 0, name)
    order = {n: i for i, n in enumerate(names)}
    merged = merged.sort_values("layer", key=lambda s: s.map(order)).reset_index(drop=True)
    out = pd.DataFrame({
        "layer": merged["layer"], f"{L} type": merged["type_l"].fillna(""), f"{R} type": merged["type_r"].fillna(""),
        f"{L} output shape": merged["output_shape_l"].fillna(""), f"{R} output shape": merged["output_shape_r"].fillna(""),
        f"{L} params": merged["params_l"].astype("Int64"), f"{R} params": merged["params_r"].astype("Int64")})

    def match(r) -> bool:
        pl, pr = r[f"{L} params"], r[f"{R} params"]
        if pd.isna(pl) or pd.isna(pr):
            present = merged.loc[r.name, "_merge"]
            other = pl if present == "left_only" else pr if present == "right_only" else pd.NA
            return pd.isna(other) or other == 0
        return bool(pl == pr) and shapes_agree(r[f"{L} output shape"], r[f"{R} output shape"])

    out["match"] = out.apply(match, axis=1).astype(bool) if len(out) else pd.Series(dtype=bool)
    tl, tr = out[f"{L} params"].sum(min_count=1), out[f"{R} params"].sum(min_count=1)
    total = {"layer": "total", f"{L} params": tl, f"{R} params": tr,
             "match": bool(pd.isna(tl) or pd.isna(tr) or tl == tr)}
    out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
    for col in out.columns:
        if col.endswith("params"):
            out[col] = out[col].astype("Int64")
        elif col != "match":
            out[col] = out[col].fillna("").astype(str)
    out["match"] = out["match"].astype(bool)
    out.attrs["left_out"] = left_out
    return out


def style_layers(table: pd.DataFrame) -> Any:
    """A pandas Styler: mismatched rows' shape and parameter cells in red, the total row in bold."""
    compare = [c for c in table.columns if c.endswith(("params", "output shape"))]

    def colour(row: pd.Series) -> list[str]:
        bad = "background-color: #ffcdd2; color: #b71c1c" if not row["match"] else ""
        bold = "font-weight: bold" if row["layer"] == "total" else ""
        return ["; ".join(x for x in (bad if c in compare or c == "layer" else "", bold) if x)
                for c in row.index]

    params = [c for c in table.columns if c.endswith("params")]
    return table.style.apply(colour, axis=1).format("{:,}", subset=params, na_rep="—")
