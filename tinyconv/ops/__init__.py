"""One module per op family; importing this package registers every op in OPS."""

from tinyconv.ops.base import OPS, Op, op_of, register  # noqa: F401
from tinyconv.ops import conv, elementwise, pool, shape  # noqa: F401,E402
