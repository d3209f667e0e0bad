"""minieye.options: one place for tuning knobs, scoped per context, checked on entry."""
import importlib
import threading

import numpy as np
import pytest

import minieye as me

options_module = importlib.import_module("minieye.options")  # `me.options` is the scoping function


def test_scope_sets_and_restores():
    before = me.options.get("threads")
    with me.options(threads=1, conv_algorithm="gemm") as inside:
        assert me.options.get("threads") == 1 and inside["conv_algorithm"] == "gemm"
        with me.options(threads=2):
            assert me.options.get("threads") == 2 and me.options.get("conv_algorithm") == "gemm"
        assert me.options.get("threads") == 1
    assert me.options.get("threads") == before and me.options.get("conv_algorithm") == "auto"


def test_scope_restores_after_an_exception():
    with pytest.raises(RuntimeError):
        with me.options(pool_parallel_min_work=0):
            raise RuntimeError
    assert me.options.get("pool_parallel_min_work") == options_module.KNOBS["pool_parallel_min_work"].default


def test_a_scope_in_one_thread_is_not_seen_by_another():
    seen = []
    entered, release = threading.Event(), threading.Event()

    def other():
        entered.wait()
        seen.append(me.options.get("threads"))
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with me.options(threads=1):
        entered.set()
        release.wait()
    t.join()
    assert seen == [None]  # the default, not the other thread's scope


def test_set_changes_the_process_default():
    try:
        me.options.set(tv_parallel_min_pixels=7)
        assert me.options.get("tv_parallel_min_pixels") == 7
        with me.options(tv_parallel_min_pixels=3):
            assert me.options.get("tv_parallel_min_pixels") == 3
        assert me.options.get("tv_parallel_min_pixels") == 7
    finally:
        options_module._defaults_reset()
    assert me.options.get("tv_parallel_min_pixels") == 1 << 20


@pytest.mark.parametrize("values, message", [
    ({"thread": 1}, "knob names among"),
    ({"threads": 0}, "threads a positive integer; got threads=0"),
    ({"threads": True}, "threads a positive integer; got threads=True"),
    ({"pool_parallel_min_work": -1}, "pool_parallel_min_work a non-negative integer"),
    ({"conv_algorithm": "winograd-ish"}, "conv_algorithm one of"),
    ({"regularizer_kernels": 1}, "regularizer_kernels True or False; got regularizer_kernels=1"),
    ({"worker_wait": -1.0}, "worker_wait a finite number > 0; got worker_wait=-1.0"),
    ({"rebalance_every": -1}, "rebalance_every a finite number >= 0; got rebalance_every=-1"),
    ({"rebalance_every": float("inf")}, "rebalance_every a finite number >= 0; got rebalance_every=inf"),
])
def test_bad_knobs_are_refused_with_the_name(values, message):
    with pytest.raises(ValueError, match=message):
        with me.options(**values):
            pass
    with pytest.raises(ValueError, match=message):
        me.options.set(**values)


@pytest.mark.parametrize("values", [{"worker_wait": "2"}, {"worker_wait": True}, {"rebalance_every": "1"}])
def test_a_number_knob_given_another_type_is_a_type_error(values):
    (name, value), = values.items()
    with pytest.raises(TypeError, match=f"{name} a finite number .*; got {name}={value!r}"):
        me.options.set(**values)


def test_numpy_numbers_are_knob_values_like_any_other():
    with me.options(threads=np.int64(2), pool_parallel_min_work=np.int32(0), worker_wait=np.float32(0.5)) as now:
        assert (now["threads"], now["pool_parallel_min_work"], now["worker_wait"]) == (2, 0, 0.5)
        assert type(now["threads"]) is int


def test_get_of_an_unknown_knob_names_it():
    with pytest.raises(ValueError, match="'nope'"):
        me.options.get("nope")
