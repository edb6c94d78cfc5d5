"""A layered, top-to-bottom layout for the small graphs the Graphs page draws (Sugiyama's scheme).

1. Cycles are broken by reversing the back edges of a depth-first search (a collapsed graph can hold
   `MLP -> Linear[dense1] -> MLP`), so the rest works on a DAG; reversed edges are drawn upward.
2. Longest-path layering: a node sits one layer below its lowest predecessor; then a node with at
   most one predecessor (an input, a parameter read) moves down to just above its first consumer.
3. An edge spanning k > 1 layers gets k - 1 virtual nodes, so it bends around nodes instead of
   crossing them and takes part in the ordering.
4. Barycenter ordering: sweeps down and up sort each layer by the mean position of its neighbours in
   the layer just swept; the order with the fewest crossings wins.
5. Coordinates: each layer is placed as near to its neighbours' mean x as the order and the minimum
   gaps allow (least squares, solved exactly by pool-adjacent-violators).

Units: x in slots (one real node is 1 slot wide, a virtual node DUMMY_WIDTH), y in layers (0 at the
top). Pure Python, deterministic: the result depends only on the order of `nodes` and `edges`.
"""
from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from dataclasses import dataclass
from typing import Iterable, Sequence

MAX_NODES = 2_000  # the page draws at most a few hundred; beyond this the sweeps stop being instant
MAX_EDGES = 20_000
MAX_DUMMIES = 5_000  # virtual nodes for long edges; past this long edges are drawn straight
DUMMY_WIDTH = 0.3  # slots a long edge's bend takes in a layer: edges need far less room than labels


@dataclass(frozen=True)
class Layout:
    x: dict[str, float]  # node -> horizontal centre, in slots; the layout's left edge is at 0
    layer: dict[str, int]  # node -> layer, 0 at the top; for a DAG every edge goes to a higher layer
    routes: list[list[tuple[float, float]]]  # per input edge, in input order: its polyline as (x, layer)
    #                                           points from src to dst, bends at virtual nodes; [] for a self loop
    reversed: int  # distinct edges turned round to break cycles (drawn upward)

    @property
    def depth(self) -> int:
        """Number of layers."""
        return 1 + max(self.layer.values(), default=-1)


def layered_layout(nodes: Sequence[str], edges: Iterable[tuple[str, str]], sweeps: int = 8) -> Layout:
    """Positions for `nodes` (unique names) joined by directed `edges` (src, dst); see the module doc."""
    index: dict[str, int] = {}
    for name in nodes:
        if name in index:
            raise ValueError(f"node {name!r} is listed twice")
        index[name] = len(index)
    if len(index) > MAX_NODES:
        raise ValueError(f"{len(index)} nodes is more than this layout draws ({MAX_NODES}); collapse more")
    pairs: list[tuple[int, int]] = []
    for src, dst in edges:
        for end in (src, dst):
            if end not in index:
                raise ValueError(f"edge {src!r} -> {dst!r} names {end!r}, which is not a node")
        pairs.append((index[src], index[dst]))
        if len(pairs) > MAX_EDGES:
            raise ValueError(f"more than {MAX_EDGES} edges is more than this layout draws; collapse more")
    n = len(index)
    dag = _acyclic(n, pairs)
    layer = _layers(n, dag)
    chains, levels, width, vlayer = _proper(n, dag, layer)
    levels = _order(levels, chains, sweeps)
    x = _place(levels, chains, width)
    names = list(index)
    routes = []
    for u, v in pairs:
        chain = [] if u == v else chains.get((u, v)) or chains[(v, u)][::-1]
        routes.append([(x[w], float(vlayer[w])) for w in chain])
    kept = set(dag)
    return Layout({names[i]: x[i] for i in range(n)}, {names[i]: layer[i] for i in range(n)}, routes,
                  sum(1 for u, v in dict.fromkeys(pairs) if u != v and (u, v) not in kept))


def _acyclic(n: int, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The distinct edges (self loops dropped), back edges of a DFS in node order reversed."""
    succ: list[list[int]] = [[] for _ in range(n)]
    seen: set[tuple[int, int]] = set()
    for u, v in pairs:
        if u != v and (u, v) not in seen:
            seen.add((u, v))
            succ[u].append(v)
    state = [0] * n  # 0 unvisited, 1 on the DFS stack, 2 finished
    out: dict[tuple[int, int], None] = {}  # insertion-ordered set
    for root in range(n):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            u, it = stack[-1]
            for v in it:
                if state[v] == 1:
                    out[(v, u)] = None  # an edge back into the stack closes a cycle: turn it round
                    continue
                out[(u, v)] = None
                if state[v] == 0:
                    state[v] = 1
                    stack.append((v, iter(succ[v])))
                    break
            else:
                state[u] = 2
                stack.pop()
    return list(out)


def _layers(n: int, dag: list[tuple[int, int]]) -> list[int]:
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for u, v in dag:
        preds[v].append(u)
        succs[u].append(v)
    missing = [len(p) for p in preds]
    ready = [i for i in range(n) if not missing[i]]
    heapq.heapify(ready)  # smallest index first: the order does not depend on set or hash order
    layer = [0] * n
    order: list[int] = []
    while ready:
        u = heapq.heappop(ready)
        order.append(u)
        for v in succs[u]:
            layer[v] = max(layer[v], layer[u] + 1)
            missing[v] -= 1
            if not missing[v]:
                heapq.heappush(ready, v)
    for u in reversed(order):  # successors first, so a moved node's own successors are final
        if len(preds[u]) <= 1 and succs[u]:
            # a source or a link of a chain (a parameter read, an Identity) waits just above its first
            # consumer instead of at the top, where its edge would run down past every other layer
            layer[u] = max(layer[u], min(layer[v] for v in succs[u]) - 1)
    low = min(layer, default=0)
    return [k - low for k in layer]


def _proper(n: int, dag: list[tuple[int, int]], layer: list[int]):
    """Chains of vertices per DAG edge (virtual ones numbered from n), the vertices of each layer in
    node order, each vertex's width in slots and its layer."""
    chains: dict[tuple[int, int], list[int]] = {}
    width = [1.0] * n
    vlayer = list(layer)
    budget = MAX_DUMMIES
    levels: list[list[int]] = [[] for _ in range(1 + max(layer, default=-1))]
    for v in range(n):
        levels[layer[v]].append(v)
    for u, v in dag:
        span = layer[v] - layer[u]
        chain = [u]
        if 1 < span <= budget + 1:
            budget -= span - 1
            for k in range(layer[u] + 1, layer[v]):
                chain.append(len(width))
                levels[k].append(len(width))
                width.append(DUMMY_WIDTH)
                vlayer.append(k)
        chains[(u, v)] = chain + [v]
    return chains, levels, width, vlayer


def _neighbours(chains: dict) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Per vertex: its neighbours one layer up and one layer down (chains are between adjacent layers,
    except long edges left without virtual nodes, which take no part in the ordering)."""
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    for chain in chains.values():
        for a, b in zip(chain, chain[1:]):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    return up, down


def _crossings(levels: list[list[int]], down: dict[int, list[int]]) -> int:
    total = 0
    for upper, lower in zip(levels, levels[1:]):
        pos = {v: i for i, v in enumerate(lower)}
        ends = sorted((i, pos[w]) for i, v in enumerate(upper) for w in down.get(v, ()) if w in pos)
        seen: list[int] = []
        for _, p in ends:  # inversions of the lower ends = pairs of edges that cross
            total += len(seen) - bisect_right(seen, p)
            insort(seen, p)
    return total


def _order(levels: list[list[int]], chains: dict, sweeps: int) -> list[list[int]]:
    up, down = _neighbours(chains)
    pos = {v: i for level in levels for i, v in enumerate(level)}
    best, best_crossings = [list(level) for level in levels], _crossings(levels, down)
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        near = up if downward else down
        order = range(1, len(levels)) if downward else range(len(levels) - 2, -1, -1)
        for k in order:
            def key(v: int) -> tuple[float, int]:
                nb = near.get(v)  # no neighbour there: keep the current place
                return (sum(pos[w] for w in nb) / len(nb) if nb else float(pos[v]), pos[v])
            levels[k].sort(key=key)
            pos.update((v, i) for i, v in enumerate(levels[k]))
        c = _crossings(levels, down)
        if c < best_crossings:
            best, best_crossings = [list(level) for level in levels], c
    return best


def _isotonic(targets: list[float]) -> list[float]:
    """The non-decreasing sequence nearest to `targets` in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [sum, count]
    for t in targets:
        blocks.append([t, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    return out


def _place(levels: list[list[int]], chains: dict, width: list[float], rounds: int = 6) -> dict[int, float]:
    up, down = _neighbours(chains)
    x: dict[int, float] = {}
    offsets: list[list[float]] = []
    for level in levels:  # each vertex's least distance from the first of its layer (half widths + half widths)
        acc, off = 0.0, []
        for i, v in enumerate(level):
            acc += (width[level[i - 1]] + width[v]) / 2 if i else 0.0
            off.append(acc)
        offsets.append(off)
        x.update(zip(level, (o - acc / 2 for o in off)))  # start centred on 0
    passes = [(range(1, len(levels)), (up,)), (range(len(levels) - 2, -1, -1), (down,))] * rounds
    passes.append((range(len(levels)), (up, down)))  # a last pass pulls each vertex between both sides
    for order, sides in passes:
        for k in order:
            level, off = levels[k], offsets[k]
            wanted = []
            for v in level:
                nb = [w for side in sides for w in side.get(v, ())]
                wanted.append(sum(x[w] for w in nb) / len(nb) if nb else x[v])
            z = _isotonic([t - o for t, o in zip(wanted, off)])
            x.update((v, zi + o) for v, zi, o in zip(level, z, off))
    left = min((x[v] - width[v] / 2 for v in x), default=0.0)
    return {v: round(xv - left, 6) for v, xv in x.items()}  # rounded: sums in another order stay equal
