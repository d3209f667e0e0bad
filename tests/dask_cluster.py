"""A LocalCluster of worker processes for the distributed tests, ready when it is handed over."""
import contextlib

import pytest


@contextlib.contextmanager
def local_client(n_workers: int = 2):
    """A Client on a new LocalCluster of ``n_workers`` processes x 1 thread, yielded only once
    the scheduler lists every worker (a cold start can lag behind the processes starting)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address="127.0.0.1:0")
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(n_workers, timeout=120)
            yield client
    finally:
        cluster.close()
