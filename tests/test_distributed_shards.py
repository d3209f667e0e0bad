"""minieye.distributed beyond one machine: workers that load their own shards, and a run that
survives a lost worker.

One LocalCluster of 2 worker processes serves the module. The recovery test SIGKILLs a real
worker process in the middle of an L-BFGS run (its nanny then starts a fresh one, which the
test waits for); the other recovery tests close in-process workers, which costs nothing.
"""
import os
import signal

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from tests.dask_cluster import local_client

SIZES = (23, 17, 30, 21)                     # rows per shard: unequal on purpose


def make_shard(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Shard ``index`` as a function of its index alone (what a worker would compute or fetch)."""
    rng = np.random.default_rng(100 + index)
    x = rng.normal(size=(SIZES[index], 6))
    return x, np.tanh(x @ np.linspace(-1, 1, 18).reshape(6, 3))


ALL_X = np.concatenate([make_shard(i)[0] for i in range(len(SIZES))])
ALL_Y = np.concatenate([make_shard(i)[1] for i in range(len(SIZES))])


def dense_net(dtype=np.float64):
    return me.Sequential(layers.Dense(6, 10, dtype=dtype, seed=1), layers.Tanh(),
                         layers.Dense(10, 3, dtype=dtype, seed=2))


@pytest.fixture(scope="module")
def client():
    with local_client(2) as c:
        yield c


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    paths = []
    for i in range(len(SIZES)):
        x, y = make_shard(i)
        paths.append(str(folder / f"part-{i}.npz"))
        np.savez(paths[-1], x=x.astype(np.float32), y=y.astype(np.float32))
    return paths


def _problem(*args, **kwargs):
    from minieye.distributed import DistributedProblem
    return DistributedProblem(*args, **kwargs)


def _close(got, want, rtol=1e-12):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


# -- loading on the workers -------------------------------------------------------------------------
def test_shards_from_a_function_equal_the_whole_data_in_one_process(client):
    from minieye.distributed import ShardSource
    single = train.Problem(dense_net(), losses.MSE(), ALL_X, ALL_Y)
    with _problem(dense_net(), losses.MSE(), shards=ShardSource(make_shard, len(SIZES)), client=client) as problem:
        assert problem.inputs == () and problem.targets is None       # the client holds no rows
        assert problem.partition_sizes == list(SIZES) and problem.n_rows == sum(SIZES)
        assert "4 shards on 2 workers" in repr(problem)
        want_loss, want_grad = single.evaluate_vector()
        got_loss, got_grad = problem.evaluate_vector()
        assert got_loss == pytest.approx(want_loss, rel=1e-12)
        _close(got_grad, want_grad)
        batch = np.random.default_rng(2).choice(sum(SIZES), size=40, replace=False)  # rows across shards
        _close(problem.evaluate_vector(batch)[1], single.evaluate_vector(batch)[1])


def test_shards_from_files_train_with_mini_batches_like_one_process(client, shard_files, tmp_path):
    from minieye.distributed import ShardSource
    x32, y32 = ALL_X.astype(np.float32), ALL_Y.astype(np.float32)
    single = train.Problem(dense_net(), losses.MSE(), x32, y32, batch_size=16, rng=5)
    want = train.Trainer(single, orientation=train.Adam()).run(max_iterations=4)
    with _problem(dense_net(), losses.MSE(), shards=ShardSource.files(shard_files), client=client,
                  batch_size=16, rng=5) as problem:
        got = train.Trainer(problem, orientation=train.Adam()).run(max_iterations=4)
    np.testing.assert_allclose([r.loss for r in got.history], [r.loss for r in want.history], rtol=1e-10)
    # the same rows as pairs of .npy files
    pairs = []
    for i, path in enumerate(shard_files):
        with np.load(path) as stored:
            pairs.append((str(tmp_path / f"x{i}.npy"), str(tmp_path / f"y{i}.npy")))
            np.save(pairs[-1][0], stored["x"])
            np.save(pairs[-1][1], stored["y"])
    with _problem(dense_net(), losses.MSE(), shards=ShardSource.files(pairs), client=client) as problem:
        assert problem.evaluate_vector()[0] == pytest.approx(train.Problem(dense_net(), losses.MSE(), x32, y32)
                                                             .evaluate()[0], rel=1e-12)


def test_shard_refusals(client, shard_files, tmp_path):
    from minieye.distributed import ShardSource
    source = ShardSource.files(shard_files)
    with pytest.raises(ValueError, match="either shards= or inputs and targets"):
        _problem(dense_net(), losses.MSE(), ALL_X, ALL_Y, shards=source, client=client)
    with pytest.raises(ValueError, match="no n_partitions with shards="):
        _problem(dense_net(), losses.MSE(), shards=source, client=client, n_partitions=2)
    with pytest.raises(TypeError, match="shards a minieye.distributed.ShardSource"):
        _problem(dense_net(), losses.MSE(), shards=shard_files, client=client)
    with pytest.raises(TypeError, match="load a callable"):
        ShardSource("part-0.npz", 1)
    with pytest.raises(ValueError, match=r"paths\[1\] an .npz file"):
        ShardSource.files([shard_files[0], "part-1.csv"])
    with pytest.raises(ValueError, match=r"paths\[0\] a tuple of 2 .npy files"):
        ShardSource.files([("x.npy",)])
    odd = str(tmp_path / "odd.npz")                   # 5 features where the others have 6
    np.savez(odd, x=np.zeros((4, 5), np.float32), y=np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"shard 1: 4 rows"):
        _problem(dense_net(), losses.MSE(), shards=ShardSource.files([shard_files[0], odd]), client=client,
                 warm_up=False)
    with pytest.raises(RuntimeError, match=r"building partition 1 .*FileNotFoundError"):
        _problem(dense_net(), losses.MSE(), shards=ShardSource.files([shard_files[0], str(tmp_path / "no.npz")]),
                 client=client)
    with pytest.raises(RuntimeError, match=r"building partition 0 .*ValueError: shard 0: .*part-0.npz has no array named 'z'"):
        _problem(dense_net(), losses.MSE(), shards=ShardSource.files(shard_files[:1], targets=("y",), inputs=("z",)),
                 client=client)


# -- a lost worker ------------------------------------------------------------------------------------
def _kill(client, address):
    """SIGKILL the worker process at ``address`` (its nanny starts a new one, at a new address)."""
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)


def _lbfgs(client, source, kill_before=None):
    """8 L-BFGS iterations on the shards; with ``kill_before=k``, the worker holding shard 0 is
    killed just before the k-th evaluation (inside the run: a line search may be under way)."""
    with _problem(dense_net(np.float32), losses.MSE(), shards=source, client=client) as problem:
        evaluate = problem.evaluate_vector

        def evaluate_after_a_kill(batch=None):
            if problem.evaluations == kill_before:
                _kill(client, problem.workers[0])
            return evaluate(batch)

        problem.evaluate_vector = evaluate_after_a_kill
        result = train.Trainer(problem, orientation=train.LBFGS(), line_search=train.ArmijoWolfe()).run(8)
        return result, list(problem.placement.moves), problem.get_vector()


def test_worker_killed_mid_lbfgs_run_ends_at_the_same_loss(client, shard_files):
    from minieye.distributed import ShardSource
    source = ShardSource.files(shard_files)
    calm, no_moves, calm_x = _lbfgs(client, source)
    assert no_moves == [] and calm.iterations == 8
    try:
        hit, moves, hit_x = _lbfgs(client, source, kill_before=5)
    finally:
        client.wait_for_workers(2, timeout=120)       # the nanny's replacement, for the tests after this one
    # both shards of the killed worker moved to a live one (later moves, if the nanny's
    # replacement joined during the run, are rebalance's, off the survivor)
    killed = moves[0][1]
    assert sorted(i for i, old, _ in moves if old == killed) == [0, 2]
    assert all(new != old for _, old, new in moves)
    assert hit.iterations == calm.iterations == 8 and hit.evaluations == calm.evaluations
    # partitions are summed in shard order whatever worker evaluates them: the same bits
    assert [r.loss for r in hit.history] == [r.loss for r in calm.history]
    np.testing.assert_array_equal(hit_x, calm_x)
    assert hit.loss < 0.5 * hit.history[0].loss


def test_in_process_workers_lost_one_by_one():
    """In-memory rows move too (sent again from the client); retries=0 gives up at once; with no
    worker left the error says so and the parameters stay."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as c, me.options(worker_wait=0.5):
        c.wait_for_workers(2, timeout=60)
        with _problem(dense_net(), losses.MSE(), ALL_X, ALL_Y, client=c) as moving, \
                _problem(dense_net(), losses.MSE(), ALL_X, ALL_Y, client=c, retries=0) as fragile:
            want_loss, want_grad = moving.evaluate_vector()
            first, second = list(cluster.workers)
            cluster.sync(cluster.workers[first].close)
            got_loss, got_grad = moving.evaluate_vector()
            assert got_loss == want_loss and np.array_equal(got_grad, want_grad)
            assert len(moving.placement.moves) == 1 and len(set(moving.workers)) == 1
            with pytest.raises(RuntimeError, match=r"lost their worker after 0 re-placements .*retries=0"):
                fragile.evaluate_vector()
            cluster.sync(cluster.workers[second].close)
            before = moving.get_vector()
            with pytest.raises(RuntimeError, match=r"no Dask worker is left .*waited 0.5 s"):
                moving.evaluate_vector()
            np.testing.assert_array_equal(moving.get_vector(), before)


def test_a_worker_that_joins_later_takes_partitions_back():
    """After a loss every partition sits on the survivor; a worker that joins (a nanny's
    replacement) gets its share at the next evaluation, and the sum keeps its bits.

    The test starts the joining worker itself: ``cluster.scale(3)`` would start one or two,
    depending on whether the cluster had already forgotten the closed worker (it does
    ``distributed.deploy.lost-worker-timeout``, 15 s, after the scheduler removed it, which a
    loaded machine can reach). ``worker_wait`` bounds how long the evaluation after the loss
    waits for the scheduler to notice it: generous here, since nothing waits for it in vain."""
    distributed = pytest.importorskip("distributed")
    from minieye.distributed.placement import live_workers
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as c, me.options(worker_wait=60, rebalance_every=0):
        c.wait_for_workers(2, timeout=60)
        with _problem(dense_net(), losses.MSE(), ALL_X, ALL_Y, client=c, n_partitions=4) as problem:
            want_loss, want_grad = problem.evaluate_vector()
            lost, survivor = problem.workers[0], problem.workers[1]
            cluster.sync(cluster.workers[next(k for k, w in cluster.workers.items()
                                              if w.address == lost)].close)
            problem.evaluate_vector()
            assert set(problem.workers) == {survivor}
            joining = cluster.sync(distributed.Worker, cluster.scheduler_address, nthreads=1, dashboard=False)
            try:  # it returns once the scheduler lists it
                assert live_workers(c, wait=False) == sorted([survivor, joining.address])
                got_loss, got_grad = problem.evaluate_vector()
                assert got_loss == want_loss and np.array_equal(got_grad, want_grad)
                assert sorted(problem.workers.count(w) for w in set(problem.workers)) == [2, 2]
                assert [(old, new) for _, old, new in problem.placement.moves[2:]] == [(survivor, joining.address)] * 2
                problem.evaluate_vector()
                assert len(problem.placement.moves) == 4  # balanced: nothing moves again
            finally:
                problem.close()  # its actors go before their worker does
                cluster.sync(joining.close)


def test_a_worker_lost_while_actors_are_built_costs_only_its_own_partitions():
    """Partitions started on two workers at once (a re-placement or a rebalance over several), one
    of them lost before its actor answers: the other worker's actors are kept, so the next call
    re-places only the lost worker's partitions (else it found live partitions without an actor
    and failed after waiting worker_wait)."""
    from types import SimpleNamespace

    from minieye.distributed.placement import Placement, WorkerLost

    class Client:
        status = "running"

        def scatter(self, data, **kwargs):
            return [SimpleNamespace(release=lambda: None)]

        def submit(self, *args, workers, **kwargs):
            return SimpleNamespace(address=workers[0])

    def wait(future, address):
        if address == "tcp://b":
            raise WorkerLost(f"worker {address} left the cluster during the call")
        return f"actor on {address}"

    placement = Placement(Client(), 4, lambda i, address: (None, None, []), dict, None, retries=1)
    placement._wait = wait
    with pytest.raises(WorkerLost):
        placement._start({0: "tcp://b", 1: "tcp://c", 2: "tcp://b", 3: "tcp://c"})
    assert placement.actors == [None, "actor on tcp://c", None, "actor on tcp://c"]
    assert placement.workers == ["tcp://b", "tcp://c", "tcp://b", "tcp://c"]
