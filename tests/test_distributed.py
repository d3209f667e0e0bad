"""minieye.distributed: the loss and gradient summed over Dask workers equal the single-process ones.

One LocalCluster of 2 worker processes serves the whole module (starting it costs a few
seconds); every problem built here uses it through ``client=`` (whose actor calls are
relayed by the scheduler), except the tests of the address and default-cluster paths
(direct calls). About 25 s in all on 2 busy cores; only the docs examples, which start
their own clusters, are marked slow. Shards and lost workers: test_distributed_shards.py
(placement decisions with a fake client: test_distributed_placement.py).
"""
import sys
import time

import numpy as np
import pytest

import minieye as me
from minieye import layers, losses, train
from tests.dask_cluster import local_client
from tests.doc_code import python_blocks

RNG = np.random.default_rng(7)
X = RNG.normal(size=(37, 6))                 # 37 rows: partitions of unequal sizes
Y = RNG.normal(size=(37, 3))
IMAGES = RNG.normal(size=(10, 1, 6, 6))
LABELS = RNG.integers(0, 4, size=10)


def dense_net(dtype=np.float64):
    return me.Sequential(layers.Dense(6, 10, dtype=dtype, seed=1), layers.Tanh(),
                         layers.Dense(10, 3, dtype=dtype, seed=2))


def conv_net():
    return me.Sequential(layers.Conv2D(1, 3, 3, padding=1, dtype=np.float64, seed=3), layers.ReLU(),
                         layers.Flatten(), layers.Dense(3 * 6 * 6, 4, dtype=np.float64, seed=4))


def two_input_graph():
    g = me.Graph()
    a, b = g.input(), g.input()
    ha = g.add(layers.Dense(6, 3, dtype=np.float64, seed=5), a)
    hb = g.add(layers.Dense(6, 3, dtype=np.float64, seed=6), b)
    g.output(g.add(layers.Add(), g.add(layers.Tanh(), ha), hb))
    return g


@pytest.fixture(scope="module")
def client():
    with local_client(2) as c:
        yield c


def _distributed(*args, client, **kwargs):
    from minieye.distributed import DistributedProblem
    return DistributedProblem(*args, client=client, **kwargs)


def _close(got, want, scale_rtol=1e-12):
    """Equal to float64 rounding: entrywise, relative to the gradient's largest entry."""
    np.testing.assert_allclose(got, want, rtol=scale_rtol, atol=scale_rtol * np.abs(want).max())


# -- no Dask ---------------------------------------------------------------------------------
def test_clear_error_without_dask(monkeypatch):
    from minieye.distributed import DistributedProblem
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'minieye\[distributed\]'"):
        DistributedProblem(dense_net(), losses.MSE(), X, Y)


def test_import_minieye_does_not_import_dask():
    import subprocess
    code = "import sys, minieye, minieye.distributed; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- gradients -------------------------------------------------------------------------------
CASES = {
    "dense": (dense_net, losses.MSE, X, Y),
    "conv+cross-entropy": (conv_net, losses.SoftmaxCrossEntropy, IMAGES, LABELS),
    "two-input graph": (two_input_graph, losses.MSE, (X, X[::-1].copy()), Y),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("n_partitions", [2, 3])
def test_gradient_equals_single_process(client, case, n_partitions):
    make, loss, inputs, targets = CASES[case]
    single = train.Problem(make(), loss(), inputs, targets)
    with _distributed(make(), loss(), inputs, targets, client=client, n_partitions=n_partitions) as problem:
        sizes = problem.partition_sizes
        assert len(sizes) == n_partitions and sum(sizes) == len(targets) and max(sizes) - min(sizes) <= 1
        want_loss, want_grad = single.evaluate_vector()
        got_loss, got_grad = problem.evaluate_vector()
        assert got_loss == pytest.approx(want_loss, rel=1e-12)
        _close(got_grad, want_grad)
        full_loss = got_loss
        # a mini-batch touching the partitions unevenly (weights N_i / N, not n_i / n)
        batch = np.random.default_rng(1).choice(len(targets), size=len(targets) // 2 + 1, replace=False)
        want_loss, want_grad = single.evaluate_vector(batch)
        got_loss, got_grad = problem.evaluate_vector(batch)
        assert got_loss == pytest.approx(want_loss, rel=1e-12)
        _close(got_grad, want_grad)
        # the DeltaSet form holds the client's own parameters
        value, deltas = problem.evaluate()
        assert value == full_loss and all(p in deltas for p in problem.params)
        _close(deltas.to_vector(problem.params), single.evaluate_vector()[1])
        value, gradient = problem.forward(batch)   # the Trainer's lazy form, on the workers too
        assert value == pytest.approx(single.forward(batch)[0], rel=1e-12)
        _close(gradient().to_vector(problem.params), single.evaluate_vector(batch)[1])
        value, gradient = problem.forward_vector()
        assert value == full_loss


def test_one_partition_is_bit_for_bit(client):
    single = train.Problem(conv_net(), losses.SoftmaxCrossEntropy(), IMAGES, LABELS)
    with _distributed(conv_net(), losses.SoftmaxCrossEntropy(), IMAGES, LABELS, client=client,
                      n_partitions=1) as problem:
        loss, grad = problem.evaluate_vector()
        assert loss == single.evaluate_vector()[0]
        np.testing.assert_array_equal(grad, single.evaluate_vector()[1])


def batchnorm_net():
    return me.Sequential(layers.Dense(6, 10, dtype=np.float64, seed=1), layers.BatchNorm1D(10, dtype=np.float64),
                         layers.Tanh(), layers.Dense(10, 3, dtype=np.float64, seed=2))


def test_running_statistics_come_back_and_modes_go_out(client):
    net = batchnorm_net()
    norm = net.layers[1]
    with _distributed(net, losses.MSE(), X, Y, client=client) as problem:
        # the warm-up evaluations left the client's statistics as they were
        assert norm.num_batches_tracked == 0 and not norm.running_mean.any() and (norm.running_var == 1).all()
        problem.evaluate_vector()
        hidden = [net.layers[0](X[a:b]) for a, b in problem.row_ranges]
        shares = [len(h) / len(X) for h in hidden]
        # the running mean moved by the whole batch's mean, as in one process
        np.testing.assert_allclose(norm.running_mean, 0.1 * net.layers[0](X).mean(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(norm.running_var, 0.9 + 0.1 * sum(s * h.var(axis=0, ddof=1)
                                                                     for s, h in zip(shares, hidden)), rtol=1e-12)
        assert norm.num_batches_tracked == 1
        # evaluation mode on the client reaches the workers: the loss of one process in that mode
        net.eval()
        before = norm.running_mean.copy()
        loss, grad = problem.evaluate_vector()
        single = train.Problem(net, losses.MSE(), X, Y).evaluate_vector()
        assert loss == pytest.approx(single[0], rel=1e-12)
        _close(grad, single[1])
        np.testing.assert_array_equal(norm.running_mean, before)
        with pytest.raises(ValueError, match=r"row indices in \[0, 37\)"):
            problem.evaluate_vector(np.array([3, 40]))


def test_a_worker_refuses_the_state_of_another_network_by_name():
    """Buffers of other shapes (same counts) are a clear error naming the shapes, and nothing is written."""
    from minieye.distributed.wire import layer_state, set_layer_state
    mine, theirs = batchnorm_net(), me.Sequential(layers.Dense(6, 5, dtype=np.float64, seed=1),
                                                  layers.BatchNorm1D(5, dtype=np.float64), layers.Tanh(),
                                                  layers.Dense(5, 3, dtype=np.float64, seed=2))
    theirs.eval()
    with pytest.raises(ValueError, match=r"client sent buffers of shapes \[\(5,\), \(5,\), \(\)\]; this network's have "
                                         r"\[\(10,\), \(10,\), \(\)\]"):
        set_layer_state(mine.layers, layer_state(theirs.layers))
    assert mine.layers[1].training


def test_dropout_masks_differ_between_partitions_and_follow_the_client_generator(client):
    from minieye.distributed.wire import partition_states

    def net():
        return me.Sequential(layers.Dropout(0.5, seed=4), layers.Dense(6, 3, dtype=np.float64, seed=1))

    twice_x, twice_y = np.concatenate([X[:10], X[:10]]), np.concatenate([Y[:10], Y[:10]])
    runs = []
    for _ in range(2):
        with _distributed(net(), losses.MSE(), twice_x, twice_y, client=client) as problem:
            assert problem.row_ranges == [(0, 10), (10, 20)]
            runs.append([problem.evaluate_vector()[0] for _ in range(3)])
            values = [p.value for p in problem.params]
            one, other = partition_states(problem.layers(), 2)
            partition_losses = [r[0] for r in problem.placement.call(
                [(0, "evaluate", (values, None, one)), (1, "evaluate", (values, None, other)),
                 (1, "evaluate", (values, None, one))])]
    assert runs[0] == runs[1]              # reproducible: the seeds come from the client's generator
    assert len(set(runs[0])) == 3          # a fresh mask on every evaluation
    # the same rows with the seeds of two partitions: two masks; with the same seeds: the same loss
    assert partition_losses[0] != partition_losses[1] and partition_losses[0] == partition_losses[2]


def test_lost_actor_is_a_clear_error_and_parameters_stay(client):
    problem = _distributed(dense_net(), losses.MSE(), X, Y, client=client)
    before = problem.get_vector()
    client.cancel(problem.placement.actor_futures())
    with pytest.raises(RuntimeError, match="evaluation on the workers failed"):
        problem.evaluate_vector()
    np.testing.assert_array_equal(problem.get_vector(), before)
    problem.close()


def test_params_subset_and_frozen_layers(client):
    net = dense_net()
    net.layers[0].freeze()                       # frozen: its values travel once, in the model
    single_net = dense_net()
    single_net.layers[0].freeze()
    chosen = [net.layers[2].bias]
    single = train.Problem(single_net, losses.MSE(), X, Y, params=[single_net.layers[2].bias])
    with _distributed(net, losses.MSE(), X, Y, client=client, params=chosen) as problem:
        assert problem.size == 3
        _close(problem.evaluate_vector()[1], single.evaluate_vector()[1])


def test_float32_network(client):
    single = train.Problem(dense_net(np.float32), losses.MSE(), X, Y)
    with _distributed(dense_net(np.float32), losses.MSE(), X, Y, client=client) as problem:
        np.testing.assert_allclose(problem.evaluate_vector()[1], single.evaluate_vector()[1], rtol=1e-5, atol=1e-6)


def test_sum_reduction_adds_partition_losses(client):
    with _distributed(dense_net(), losses.MSE(), X, Y, client=client, n_partitions=2, reduction="sum") as problem:
        (a, b), (c, d) = problem.row_ranges
        parts = [train.Problem(dense_net(), losses.MSE(), X[a:b], Y[a:b]),
                 train.Problem(dense_net(), losses.MSE(), X[c:d], Y[c:d])]
        values = [p.evaluate_vector() for p in parts]
        loss, grad = problem.evaluate_vector()
        assert loss == pytest.approx(values[0][0] + values[1][0], rel=1e-12)
        _close(grad, values[0][1] + values[1][1])


# -- training ---------------------------------------------------------------------------------
TRAININGS = {
    "LBFGS+ArmijoWolfe": (train.LBFGS, train.ArmijoWolfe, None),
    "Adam, mini-batches": (train.Adam, train.ArmijoWolfe, 16),
    "QQN+Quadratic": (train.QQN, train.Quadratic, None),
    "OWLQN+Backtracking": (train.OWLQN, train.Backtracking, None),
}


@pytest.mark.parametrize("training", TRAININGS)
def test_training_trajectory_equals_single_process(client, training):
    orientation, line_search, batch_size = TRAININGS[training]
    single = train.Problem(dense_net(), losses.MSE(), X, Y, batch_size=batch_size, rng=3)
    want = train.Trainer(single, orientation=orientation(), line_search=line_search()).run(max_iterations=6)
    with _distributed(dense_net(), losses.MSE(), X, Y, client=client, batch_size=batch_size, rng=3) as problem:
        got = train.Trainer(problem, orientation=orientation(), line_search=line_search()).run(max_iterations=6)
        assert got.iterations == want.iterations == 6
        assert problem.evaluations == got.evaluations  # every evaluation ran on the workers
        np.testing.assert_allclose([r.loss for r in got.history], [r.loss for r in want.history],
                                   rtol=1e-10, atol=0)
        np.testing.assert_allclose(problem.get_vector(), single.get_vector(), rtol=1e-9, atol=1e-12)
        if batch_size is None:  # it did train (a mini-batch loss is not comparable)
            assert got.loss < train.Problem(dense_net(), losses.MSE(), X, Y).evaluate()[0]


# -- setup, lifetime, errors ----------------------------------------------------------------------
def _actors(dask_worker):
    state = getattr(dask_worker, "state", dask_worker)
    return sorted(key for key in state.actors if str(key).startswith("minieye-partition"))


def test_warm_up_builds_the_model_on_every_worker_and_close_releases_it(client):
    problem = _distributed(dense_net(), losses.MSE(), X, Y, client=client)
    assert problem.setup_seconds > 0 and len(set(problem.workers)) == 2
    mine = {f.key for f in problem.placement.actor_futures()}
    held = {w: set(keys) & mine for w, keys in client.run(_actors).items()}
    assert sorted(len(keys) for keys in held.values()) == [1, 1]   # one partition's actor per worker
    problem.close()
    for _ in range(50):   # releasing is asynchronous
        if not any(set(keys) & mine for keys in client.run(_actors).values()):
            break
        time.sleep(0.1)
    assert not any(set(keys) & mine for keys in client.run(_actors).values())
    with pytest.raises(ValueError, match="closed"):
        problem.evaluate_vector()
    assert client.status == "running"          # a client passed in is left open


def test_refresh_resends_frozen_values(client):
    net = dense_net()
    net.layers[0].freeze()
    with _distributed(net, losses.MSE(), X, Y, client=client) as problem:
        before = problem.evaluate_vector()[0]
        net.layers[0].weight.value[...] *= 2.0  # a frozen parameter: not sent with evaluations
        assert problem.evaluate_vector()[0] == before
        problem.refresh()
        assert problem.evaluate_vector()[0] == pytest.approx(train.Problem(net, losses.MSE(), X, Y).evaluate()[0],
                                                              rel=1e-12)


def test_scheduler_address_connects_a_client_that_close_stops(client):
    from minieye.distributed import DistributedProblem
    address = client.scheduler.address
    with DistributedProblem(dense_net(), losses.MSE(), X, Y, address=address) as problem:
        own = problem.client
        assert own is not client and problem.evaluate_vector()[0] > 0
    assert own.status == "closed" and client.status == "running"


def test_default_local_cluster_starts_and_stops():
    pytest.importorskip("distributed")
    from minieye.distributed import DistributedProblem
    with DistributedProblem(dense_net(), losses.MSE(), X, Y, n_workers=1) as problem:
        cluster = problem._owned[-1]
        assert len(problem.workers) == 1 and problem.evaluate_vector()[0] > 0
    assert problem.client.status == "closed" and cluster.status.name == "closed"


def test_refusals(client):
    with pytest.raises(ValueError, match="nothing to distribute"):
        _distributed(layers.Source(value=np.zeros((1, 2))), layers.Mean(), client=client)
    with pytest.raises(ValueError, match="reduction"):
        _distributed(dense_net(), losses.MSE(), X, Y, client=client, reduction="median")
    with pytest.raises(ValueError, match="either client= or address="):
        _distributed(dense_net(), losses.MSE(), X, Y, client=client, address="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="dask.distributed.Client"):
        _distributed(dense_net(), losses.MSE(), X, Y, client="not a client")


@pytest.mark.slow
@pytest.mark.parametrize("block", [0, 1], ids=["in-memory", "shards"])
def test_docs_example_runs(block):
    """The first two code blocks of docs/distributed.md run as written (each starts its own cluster)."""
    pytest.importorskip("distributed")
    code = python_blocks("docs/distributed.md")[block]
    exec(compile(code, "docs/distributed.md", "exec"), {"__name__": "__main__"})


def test_no_worker_is_waited_for_then_refused():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as empty, me.options(worker_wait=0.5):
        with pytest.raises(ValueError, match=r"at least one Dask worker .*\(waited 0.5 s\)"):
            _distributed(dense_net(), losses.MSE(), X, Y, client=empty)


def test_a_partition_caps_numba_threads_only_during_its_call():
    import numba
    from minieye.distributed.wire import pack_model
    from minieye.distributed.worker import PartitionEvaluator
    net, loss = dense_net(), losses.MSE()
    params = net.parameters()
    evaluator = PartitionEvaluator(pack_model(net, loss, params), ((X[:5],), Y[:5]), numba_threads=1)
    seen = []
    original = evaluator.problem.evaluate

    def spy(rows):
        seen.append(numba.get_num_threads())
        return original(rows)

    evaluator.problem.evaluate = spy
    before = numba.get_num_threads()
    loss_value, grad, _, _, buffers = evaluator.evaluate([p.value for p in params], None)
    assert seen == [1] and numba.get_num_threads() == before  # the worker thread gets its setting back
    assert np.isfinite(loss_value) and grad.shape == (sum(p.size for p in params),) and buffers is None
