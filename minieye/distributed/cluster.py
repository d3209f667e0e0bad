"""Finding Dask: an existing Client, a scheduler address, or a LocalCluster of processes.

Dask is an optional extra (``pip install 'minieye[distributed]'``); it is imported
here, lazily, so that ``import minieye`` never pays for it and a missing install
gives one clear message.
"""
from __future__ import annotations

from typing import Any

from ..checks import check_positive_int, fail
from ..options import get

__all__ = ["require_dask", "connect"]

INSTALL_HINT = "install it with: pip install 'minieye[distributed]' (or pip install 'dask[distributed]')"


def require_dask() -> Any:
    """The ``distributed`` module, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"minieye.distributed needs Dask's distributed scheduler, which is not "
                          f"installed ({exc}); {INSTALL_HINT}") from None
    return distributed


def connect(client: Any = None, address: str | None = None, n_workers: int = 2,
            threads_per_worker: int = 1, direct: bool = True) -> tuple[Any, list[Any]]:
    """``(client, owned)``: the Client to use and what this call started (closed by the caller).

    - ``client``: used as it is and never closed here;
    - ``address``: a Client connected to that scheduler ("tcp://host:8786"), closed at the end;
      it talks to the workers directly when ``direct`` (else through the scheduler);
    - neither: a LocalCluster of ``n_workers`` processes with ``threads_per_worker``
      threads each (its HTTP server on a free local port, never a clash with another
      cluster on 8787). Numba's threads are capped per call by the problem
      (``numba_threads``), not with NUMBA_NUM_THREADS in the workers' environment:
      a worker that re-imports a ``__main__`` importing minieye has loaded Numba before
      the nanny sets its environment, and Numba refuses a NUMBA_NUM_THREADS that
      disagrees with the thread pool it has launched.
    """
    where = "minieye.distributed"
    distributed = require_dask()
    if client is not None and address is not None:
        raise fail(where, "either client= or address=, not both", "both")
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise fail(where, "client a dask.distributed.Client", type(client).__name__)
        return client, []
    if address is not None:
        if not isinstance(address, str):
            raise fail(where, "address a scheduler address string like 'tcp://host:8786'",
                       type(address).__name__)
        new = distributed.Client(address, direct_to_workers=direct)
        return new, [new]
    n_workers = check_positive_int(n_workers, where, "n_workers")
    threads_per_worker = check_positive_int(threads_per_worker, where, "threads_per_worker")
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                       processes=True, dashboard_address="127.0.0.1:0")
    try:
        new = distributed.Client(cluster, direct_to_workers=direct)
        # The processes have started; wait until the scheduler lists them all (a cold start
        # can lag), else the partitions would be placed on fewer workers than asked for.
        try:
            new.wait_for_workers(n_workers, timeout=get("worker_wait"))
        except Exception:  # distributed's TimeoutError: use those that came (at least one is waited for)
            pass
    except BaseException:
        cluster.close()
        raise
    return new, [new, cluster]


def worker_addresses(client: Any) -> list[str]:
    """Addresses of the workers the scheduler lists now, sorted.

    Asks the scheduler itself, never the client's cached copy: ``Client.scheduler_info``
    returns that copy when the scheduler is slow to answer (a loaded machine), and the
    copy the client refreshes in the background lists no worker at all, which would look
    like every worker lost. Raises OSError when the scheduler cannot be reached.
    """
    if _takes_n_workers(client):
        identity = client.sync(client.scheduler.identity, n_workers=-1)
    else:
        identity = client.sync(client.scheduler.identity)
    return sorted(identity["workers"])


def _takes_n_workers(client: Any) -> bool:
    # Recent distributed versions list only the first few workers unless n_workers=-1.
    import inspect
    return "n_workers" in inspect.signature(client.scheduler_info).parameters
