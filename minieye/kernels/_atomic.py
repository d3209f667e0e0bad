"""An atomic counter for kernels whose threads claim work as they go (``conv_small``).

Numba has no atomic operations on the CPU; ``fetch_add`` is LLVM's ``atomicrmw add`` on one int64
element. Threads that claim chunks of work from one counter stay balanced when one of them starts
late or runs slower (a hand-off to a thread costs tens of microseconds; a core may be shared), and
what each chunk computes does not depend on which thread claimed it.
"""
from __future__ import annotations

import threading

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["fetch_add"]


@intrinsic
def fetch_add(typingctx, counter, index, value):
    """``counter[index] += value`` atomically (sequentially consistent); returns the value before.
    ``counter``: a C-contiguous 1-D int64 array (index unchecked)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and counter.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        index_value = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, [index_value])
        amount = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", pointer, amount, "seq_cst")

    return types.int64(counter, index, value), codegen


def _fetch_add_python(counter, index, value):
    """``fetch_add`` as plain Python, for NUMBA_DISABLE_JIT=1 (an intrinsic only runs compiled)."""
    with _python_lock:
        before = int(counter[index])
        counter[index] = before + value
    return before


if numba.config.DISABLE_JIT:
    _python_lock = threading.Lock()
    fetch_add = _fetch_add_python  # noqa: F811
