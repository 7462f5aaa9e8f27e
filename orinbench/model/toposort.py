"""Put a graph's nodes in topological order, counting what subgraphs read from outer scopes.

ONNX requires every graph's nodes to be topologically sorted, and TensorRT's ONNX parser reads
them in file order. ONNX Runtime's quantizer can append the Q/DQ pair of a tensor that an
``If``/``Loop`` body reads from the outer scope *after* the node that owns the body (seen with
onnxruntime 1.32 on a model whose ``If`` branches read a quantized MatMul's output), which the
ONNX checker rejects. Sorting fixes the order without changing the graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import onnx


def _defined_in(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.input}
    names.update(t.name for t in graph.initializer)
    names.update(t.values.name for t in graph.sparse_initializer)
    for n in graph.node:
        names.update(n.output)
    return names


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def outer_reads(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph's nodes read that the graph itself does not define."""
    defined = _defined_in(graph)
    reads: set[str] = set()
    for n in graph.node:
        reads.update(i for i in n.input if i)
        for sub in _subgraphs(n):
            reads.update(outer_reads(sub))
    return reads - defined


def node_needs(node: onnx.NodeProto) -> set[str]:
    """Every name ``node`` needs before it can run: its inputs and its bodies' outer reads."""
    needs = {i for i in node.input if i}
    for sub in _subgraphs(node):
        needs.update(outer_reads(sub))
    return needs


def sort_topologically(graph: onnx.GraphProto, *, outer: Iterable[str] = ()) -> bool:
    """Reorder ``graph``'s nodes (and, recursively, its bodies') into a topological order that
    keeps the file order wherever it is already valid. Returns whether anything moved. Names no
    node produces (graph inputs, initializers, ``outer`` scopes) count as available; a node
    whose needs can never be met keeps its relative place at the end, for the checker to name."""
    moved = False
    available = set(outer)
    available.update(i.name for i in graph.input)
    available.update(t.name for t in graph.initializer)
    available.update(t.values.name for t in graph.sparse_initializer)
    for n in graph.node:
        for sub in _subgraphs(n):
            moved |= sort_topologically(sub, outer=available | _defined_in(graph))
    pending = list(graph.node)
    producer: dict[str, int] = {}
    for i, n in enumerate(pending):
        for o in n.output:
            if o and o not in available:
                producer.setdefault(o, i)
    # Kahn's algorithm, always taking the earliest ready node, so a valid order is kept as is
    waits_on = [
        {producer[x] for x in node_needs(n) if x in producer and producer[x] != i}
        for i, n in enumerate(pending)
    ]
    users: list[list[int]] = [[] for _ in pending]
    for i, deps in enumerate(waits_on):
        for d in deps:
            users[d].append(i)
    count = [len(d) for d in waits_on]
    ready = [i for i, c in enumerate(count) if c == 0]
    heapq.heapify(ready)
    taken: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        taken.append(i)
        for u in users[i]:
            count[u] -= 1
            if count[u] == 0:
                heapq.heappush(ready, u)
    seen = set(taken)
    order = [pending[i] for i in taken] + [n for i, n in enumerate(pending) if i not in seen]
    if [id(n) for n in order] != [id(n) for n in pending]:
        copies = [onnx.NodeProto() for _ in order]
        for c, n in zip(copies, order, strict=True):
            c.CopyFrom(n)
        del graph.node[:]
        graph.node.extend(copies)
        moved = True
    return moved
