"""One module per op family; importing this package registers every op in OPS."""

from tinyconv.ops.base import OPS, Op, op_of, register  # noqa: F401
from tinyconv.ops import conv, elementwise, pool, shape  # noqa: F401,E402
from tinyconv.ops import log_softmax, softmax  # noqa: F401,E402
from tinyconv.ops import conv_transpose, unary  # noqa: F401,E402


def check_shapes(graph) -> None:
    """Every node's output tensors have the shapes its op's rule gives (raises ModelError)."""
    from tinyconv.errors import ModelError

    for node in graph.nodes:
        for name, shape in zip(node.outputs, op_of(node).infer_shapes(node, graph)):
            if tuple(graph.tensors[name].shape) != tuple(shape):
                raise ModelError(f"{node.where()}: output '{name}' is {list(graph.tensors[name].shape)}, the op gives {list(shape)}", node=node.name)
