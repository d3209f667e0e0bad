"""Placement's rebalance and re-placement decisions with a fake Dask client: no cluster, so the
orders of events that a real one rarely shows (a worker lost while actors are built, a move cut
short) can be set up exactly. The runs on a real cluster are in test_distributed_shards.py."""
import pytest

import minieye as me


@pytest.mark.parametrize("holders, live, moved", [
    (["a", "a", "a", "a"], ["a", "b"], {3: "b", 2: "b"}),        # all on the survivor: half go back
    (["a", "a"], ["a", "b", "c"], {1: "b"}),                      # more workers than partitions
    (["a"], ["a", "b", "c"], {}),
    (["a", "b", "a", "b", "a"], ["a", "b", "c"], {4: "c"}),       # one apart is balanced enough
    (["a", "gone", "a", "gone"], ["a", "c"], {2: "c"}),           # a lost worker's: the next call re-places them
])
def test_rebalance_moves_partitions_from_the_fullest_to_the_emptiest(monkeypatch, holders, live, moved):
    from minieye.distributed import placement as placement_module

    placement = placement_module.Placement(object(), len(holders), None, dict, None, retries=1)
    placement.workers = list(holders)
    seen = []
    monkeypatch.setattr(placement_module, "live_workers", lambda client, wait: live)
    monkeypatch.setattr(placement, "_swap", lambda targets: seen.append(dict(targets)))
    with me.options(rebalance_every=None):
        placement.rebalance()
    assert seen == []  # None: never looks unless forced
    placement.rebalance(force=True)
    assert seen == ([moved] if moved else [])


class _FakeClient:
    """Just enough of a dask Client for Placement._start and rebalance's swap, no cluster."""
    status = "running"

    def __init__(self):
        self.cancelled = []

    def scatter(self, data, **kwargs):
        from types import SimpleNamespace
        return [SimpleNamespace(release=lambda: None)]

    def submit(self, cls, model, part, *args, workers, **kwargs):
        from types import SimpleNamespace
        return SimpleNamespace(address=workers[0], build=True, part=part, status="pending")

    def cancel(self, futures):
        self.cancelled.append(list(futures))


def _live(monkeypatch, live: list[str]) -> None:
    """The scheduler lists the workers in ``live`` (a list the test may shrink)."""
    from minieye.distributed import placement as placement_module

    monkeypatch.setattr(placement_module, "live_workers",
                        lambda client, exclude=frozenset(), wait=True: [w for w in live if w not in exclude])


@pytest.mark.parametrize("builds", [True, False])
def test_rebalance_builds_before_it_releases_and_keeps_the_placement_when_that_fails(monkeypatch, builds):
    from types import SimpleNamespace

    from minieye.distributed import placement as placement_module

    client = _FakeClient()
    placement = placement_module.Placement(client, 4, lambda i, address: (None, None, []), dict, None, retries=0)

    def actor(address):
        return SimpleNamespace(describe=lambda: SimpleNamespace(address=address, build=False))

    def wait(future, address):
        if future.build:
            if address == "tcp://new" and not builds:
                raise OSError("the shard files are not on this machine")
            return actor(address)
        return ("rows", 4)

    placement._wait = wait
    old_held = [[f"future {i}"] for i in range(4)]
    placement.workers, placement.actors = ["tcp://a"] * 4, [actor("tcp://a") for _ in range(4)]
    placement._held, placement.layout = [list(h) for h in old_held], [("rows", 4)] * 4
    monkeypatch.setattr(placement_module, "live_workers", lambda client, wait: ["tcp://a", "tcp://new"])
    if builds:
        placement.rebalance(force=True)
        assert placement.workers == ["tcp://a", "tcp://a", "tcp://new", "tcp://new"]
        assert client.cancelled == [old_held[3], old_held[2]]  # the old actors go after the new ones answered
        assert [m[0] for m in placement.moves] == [3, 2] and placement.refused == set()
    else:
        before = list(placement.actors)
        with pytest.warns(RuntimeWarning, match=r"moving partitions \[2, 3\] to worker\(s\) \['tcp://new'\] "
                                                r"failed .*shard files.* stay where they were"):
            placement.rebalance(force=True)
        assert placement.workers == ["tcp://a"] * 4 and placement.actors == before
        assert placement._held == old_held and placement.moves == []
        assert placement.refused == {"tcp://new"}
        placement.rebalance(force=True)  # the refused worker is not offered partitions again
        assert placement.moves == [] and placement.workers == ["tcp://a"] * 4


def test_a_replacement_cut_short_by_a_second_loss_still_checks_the_rows_it_moved(monkeypatch):
    """Partitions 0 and 2 lose worker a and are re-placed on c and d; d is lost while their actors
    are built. Partition 0, built on c, came back with other rows than it first had: that must
    be refused, although the move was cut short (the next round would use it unchecked)."""
    from types import SimpleNamespace

    from minieye.distributed import placement as placement_module

    live = ["tcp://b", "tcp://c", "tcp://d"]  # tcp://a is gone already
    _live(monkeypatch, live)

    def actor(address, part):
        rows = 5 if (part, address) == (0, "tcp://c") else 4  # partition 0's source gives c one row more

        def method(value):
            return lambda *args: SimpleNamespace(build=False, value=value, status="finished")

        return SimpleNamespace(describe=method(("rows", rows)), evaluate=method(part))

    def wait(future, address):
        if address == "tcp://a" or (future.build and address == "tcp://d"):
            if address in live:
                live.remove(address)
            raise placement_module.WorkerLost(f"worker {address} left the cluster during the call")
        return actor(address, future.part) if future.build else future.value

    placement = placement_module.Placement(_FakeClient(), 4, lambda i, address: (i, None, []), dict, None, retries=2)
    placement._wait = wait
    placement.workers = ["tcp://a", "tcp://b", "tcp://a", "tcp://b"]
    placement.actors = [actor(w, i) for i, w in enumerate(placement.workers)]
    placement._held = [[SimpleNamespace(status="finished")] for _ in range(4)]
    placement.layout = [("rows", 4)] * 4
    with pytest.raises(RuntimeError, match=r"partition 0 re-loaded on tcp://c has \(rows, layout\) \('rows', 5\)"):
        placement.call([(i, "evaluate", ()) for i in range(4)])
    assert [(i, new) for i, _, new in placement.moves] == [(0, "tcp://c"), (2, "tcp://d")]


def test_a_rebalance_cut_short_by_a_lost_worker_checks_only_the_actors_it_built(monkeypatch):
    """rebalance moves partitions 3 and 2 to c and d; d is lost while its actor is built. The move
    is abandoned, as for any loss, and only partition 3's new actor is asked for its rows: partition
    2 still holds its old actor, which a check of its rows at d's address would find lost too and
    turn into an error that refuses c and d as if they could not build."""
    from types import SimpleNamespace

    from minieye.distributed import placement as placement_module

    live = ["tcp://a", "tcp://c", "tcp://d"]
    _live(monkeypatch, live)

    described = []

    def actor(address):
        def describe():
            described.append(address)
            return SimpleNamespace(build=False, value=("rows", 4), status="finished")
        return SimpleNamespace(describe=describe)

    def wait(future, address):
        if future.build and address == "tcp://d" and address in live:
            live.remove(address)
        if address not in live:
            raise placement_module.WorkerLost(f"worker {address} left the cluster during the call")
        return actor(address) if future.build else future.value

    client = _FakeClient()
    placement = placement_module.Placement(client, 4, lambda i, address: (i, None, []), dict, None, retries=0)
    placement._wait = wait
    old = [actor("tcp://a") for _ in range(4)]
    placement.workers, placement.actors = ["tcp://a"] * 4, list(old)
    placement._held = [[SimpleNamespace(status="finished")] for _ in range(4)]
    placement.layout = [("rows", 4)] * 4
    with pytest.warns(RuntimeWarning, match=r"moving partitions \[2, 3\] .* failed \(WorkerLost: worker tcp://d"):
        placement.rebalance(force=True)
    assert described == ["tcp://c"]  # partition 3's new actor only
    assert placement.refused == set() and placement.moves == []
    assert placement.workers == ["tcp://a"] * 4 and placement.actors == old
