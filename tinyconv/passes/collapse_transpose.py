"""Transposes of rank > 4 (channel shuffle's [N, g, C/g, H, W] swap) become 4-D ones.

Size-1 axes are dropped and input axes that stay neighbours in the permutation are merged, so
ShuffleNet's (0, 2, 1, 3, 4) on [1, g, C/g, H, W] is (0, 2, 1, 3) on [1, g, C/g, H·W]; reshapes
around it carry the shapes (and fold into their neighbours).
"""

from __future__ import annotations

from tinyconv.ir import Graph, Node, Tensor


def collapse(shape, perm) -> tuple[list[int], list[int]]:
    """(collapsed input shape, collapsed perm) describing the same data movement."""
    keep = [a for a in range(len(shape)) if shape[a] != 1]
    order = [a for a in perm if a in keep]
    groups: list[list[int]] = []  # runs of input axes that move together, in output order
    for a in order:
        if groups and groups[-1][-1] + 1 == a:
            groups[-1].append(a)
        else:
            groups.append([a])
    by_input = sorted(groups, key=lambda grp: grp[0])
    new_shape = [int(eval_prod(shape[a] for a in grp)) for grp in by_input]
    new_perm = [by_input.index(grp) for grp in groups]
    return new_shape or [1], new_perm or [0]


def eval_prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def run(g: Graph) -> None:
    for node in [n for n in g.nodes if n.op == "transpose" and len(n.attrs["perm"]) > 4]:
        src, out = node.inputs[0], node.outputs[0]
        shape, perm = g.tensors[src].shape, node.attrs["perm"]
        new_shape, new_perm = collapse(shape, perm)
        if len(new_shape) > 4:
            continue  # op_of(...).infer_shapes will refuse it with a clear error
        k = g.nodes.index(node)
        a = g.add_tensor(Tensor(g.unique_name(f"{node.name}_in"), tuple(new_shape))).name
        b = g.add_tensor(Tensor(g.unique_name(f"{node.name}_moved"), tuple(new_shape[p] for p in new_perm))).name
        g.nodes[k : k + 1] = [
            Node(f"{node.name}_collapse", "reshape", [src], [a], {"shape": tuple(new_shape)}, origin=node.origin),
            Node(node.name, "transpose", [a], [b], {"perm": tuple(new_perm)}, origin=node.origin),
            Node(f"{node.name}_expand", "reshape", [b], [out], {"shape": tuple(g.tensors[out].shape)}, origin=node.origin),
        ]
