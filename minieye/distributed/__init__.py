"""Data-parallel training on Dask: the same Trainer, the loss and gradient summed over workers.

    from minieye import train
    from minieye.distributed import DistributedProblem

    with DistributedProblem(net, losses.MSE(), inputs, targets) as problem:   # LocalCluster, 2 processes
        result = train.Trainer(problem, orientation=train.LBFGS()).run(100)

The rows are cut into partitions that are scattered once to the workers; each
evaluation sends the parameter values, every worker runs the ordinary forward and
backward pass on its rows, and the client adds the results weighted by n_i / N. The
network travels in minieye's file format (``me.io.encode``), never pickled.
With ``shards=ShardSource(load, count)`` (or ``ShardSource.files(paths)``) each worker
loads its own shards and the client never holds the data; a shard whose worker is lost
is loaded again on another worker and the evaluation repeated. Pass ``client=`` (a dask.distributed.Client) or ``address="tcp://host:8786"`` to use
an existing cluster. Needs the optional extra: ``pip install 'minieye[distributed]'``.
See docs/distributed.md.
"""
from .cluster import connect, require_dask
from .problem import DistributedProblem
from .shards import ShardSource

__all__ = ["DistributedProblem", "ShardSource", "connect", "require_dask"]
