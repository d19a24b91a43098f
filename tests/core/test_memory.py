"""The arena planner never lets two live tensors share bytes, and never beats the lower bound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv.ir import Graph, Node, Tensor
from tinyconv.memory import overlaps, plan_memory


@st.composite
def chain_with_skips(draw):
    """A random DAG of element-wise and reshaping nodes with long-lived skip connections."""
    g = Graph()
    g.add_tensor(Tensor("in", (1, draw(st.integers(1, 64))), "int8"))
    g.inputs = ["in"]
    names = ["in"]
    for i in range(draw(st.integers(1, 14))):
        a = draw(st.sampled_from(names))
        size = draw(st.integers(1, 300))
        out = f"t{i}"
        g.add_tensor(Tensor(out, (1, size), "int8"))
        if draw(st.booleans()) and len(names) > 1:
            b = draw(st.sampled_from(names))
            g.nodes.append(Node(f"n{i}", "concat", [a, b], [out], {"axis": 1}))
        else:
            g.nodes.append(Node(f"n{i}", "reshape", [a], [out], {"shape": (1, size)}))
        names.append(out)
    g.outputs = [names[-1]]
    return g


@settings(max_examples=300)
@given(chain_with_skips())
def test_plan_has_no_overlap_and_respects_lower_bound(g):
    plan = plan_memory(g)
    assert overlaps(plan) == []
    assert plan.arena_bytes >= plan.lower_bound
    for b in plan.buffers.values():
        assert b.offset % 16 == 0


def test_in_place_reuse_for_equal_size_elementwise():
    g = Graph()
    for name in ("x", "a", "b", "y"):
        g.add_tensor(Tensor(name, (1, 100), "int8"))
    g.inputs, g.outputs = ["x"], ["y"]
    g.nodes = [
        Node("n0", "reshape", ["x"], ["a"], {"shape": (1, 100)}),
        Node("n1", "add", ["a", "a"], ["b"], {}),
        Node("n2", "reshape", ["b"], ["y"], {"shape": (1, 100)}),
    ]
    plan = plan_memory(g)
    assert plan.offsets["a"] == plan.offsets["b"]
    assert plan.arena_bytes == 112  # one 100-byte buffer, aligned
