"""Two real MultiWorkerMirroredStrategy workers on loopback, each with its own
shard: every worker gets the initializer of the union of the shards, equal to
the single-process result on the union (the order statistics exactly)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")  # the workers are TensorFlow's

import keras_biasinit as kbi  # noqa: E402
from tests._multi_worker import adapt_heads  # noqa: E402
from tests._multi_worker import adapt_scales  # noqa: E402
from tests._multi_worker import compute  # noqa: E402
from tests._multi_worker import shard_data  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 240  # seconds for the whole pair; a hung worker is killed


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Runs the two workers once; returns their JSON results."""
    tmp = tmp_path_factory.mktemp("workers")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs, outputs = [], []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                   KERAS_BACKEND="tensorflow",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        out = tmp / f"worker{index}.json"
        log = open(tmp / f"worker{index}.log", "w")
        procs.append((subprocess.Popen(
            [sys.executable, os.path.join(HERE, "_multi_worker.py"), str(out)],
            env=env, stdout=log, stderr=subprocess.STDOUT), log))
        outputs.append(out)
    try:
        for proc, _ in procs:
            proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = [(tmp / f"worker{i}.log").read_text()[-3000:] for i in range(2)]
    for (proc, _), log in zip(procs, logs):
        assert proc.returncode == 0, f"a worker failed or hung:\n{log}"
    return [json.loads(out.read_text()) for out in outputs]


@pytest.fixture(scope="module")
def union():
    """The single-process numbers on the union of the two shards."""
    shards = [shard_data(0), shard_data(1)]
    data = {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}
    return {k: v.get_config() for k, v in compute(None, data).items()}, data


EXACT = ["median", "median_tiny", "quantile_tiny", "huber_tiny"]
CLOSE = ["prior", "sigmoid", "he", "mean"]


def _values(config):
    return np.concatenate([np.ravel(v) for k, v in sorted(config.items())
                           if isinstance(v, (int, float, list)) and k != "seed"
                           and not isinstance(v, bool)])


@pytest.mark.parametrize("name", EXACT + CLOSE)
def test_every_worker_gets_the_union_initializer(workers, union, name):
    expected = union[0][name]
    for worker in workers:
        got = worker[name]
        assert got.keys() <= expected.keys()
        if name in EXACT:  # the order statistic exactly, its loss (a sum) closely
            assert {k: got[k] for k in got if k != "expected_loss"} == {
                k: expected[k] for k in got if k != "expected_loss"}
            assert got["expected_loss"] == pytest.approx(expected["expected_loss"],
                                                         rel=1e-12)
        else:
            np.testing.assert_allclose(_values(got), _values(
                {k: expected[k] for k in got}), rtol=1e-12)
    assert workers[0][name] == workers[1][name]  # bit-identical on both


@pytest.fixture(scope="module")
def union_adapted(union):
    """Single-process `adapt_output_bias` of the two-head model on the union."""
    return adapt_heads(None, union[1])


def test_adapt_output_bias_sets_the_union_biases_on_every_worker(
        workers, union, union_adapted):
    # The single-process reference: MedianBias.from_dataset on the union.
    assert union_adapted["reg"]["config"]["median"] == union[0]["median"]["median"]
    for worker in workers:
        got = worker["adapt"]
        assert set(got) == {"cls", "reg"}
        # The multi-pass weighted median of the union, exactly; its loss closely.
        reg, expected = got["reg"], union_adapted["reg"]
        assert reg["config"]["median"] == expected["config"]["median"]
        assert reg["bias"] == expected["bias"]
        assert reg["config"]["expected_loss"] == pytest.approx(
            expected["config"]["expected_loss"], rel=1e-12)
        cls, expected = got["cls"], union_adapted["cls"]
        np.testing.assert_allclose(cls["config"]["priors"],
                                   expected["config"]["priors"], rtol=1e-12)
        np.testing.assert_allclose(cls["bias"], expected["bias"], rtol=1e-6)
    assert workers[0]["adapt"] == workers[1]["adapt"]  # bit-identical on both
    # ... and not the chief shard's, which TF would otherwise broadcast.
    chief = adapt_heads(None, shard_data(0))
    assert chief["reg"]["config"]["median"] != workers[1]["adapt"]["reg"][
        "config"]["median"]


def test_kernel_scales_are_the_union_gains_on_every_worker(workers, union):
    expected = adapt_scales(None, union[1])  # one process, the union's rows
    for worker in workers:
        np.testing.assert_allclose(worker["scales"], expected, rtol=1e-5)
    assert workers[0]["scales"] == workers[1]["scales"]  # bit-identical on both
    chief = adapt_scales(None, shard_data(0))
    assert not np.allclose(chief, expected, rtol=1e-3)


def test_the_union_is_not_either_shard(workers, union):
    shard_means = [np.average(shard_data(i)["y"], axis=0,
                              weights=shard_data(i)["w"]) for i in range(2)]
    union_mean = np.average(union[1]["y"], axis=0, weights=union[1]["w"])
    np.testing.assert_allclose(workers[0]["mean"]["mean"], union_mean, rtol=1e-12)
    for shard_mean in shard_means:
        assert not np.allclose(workers[0]["mean"]["mean"], shard_mean, rtol=1e-3)


def test_a_dense_layer_built_in_scope_holds_the_union_bias(workers, union):
    union_mean = union[1]["y"].mean(axis=0)
    for worker in workers:
        np.testing.assert_allclose(worker["dense_bias"], union_mean, rtol=1e-6)


def test_without_a_strategy_the_numbers_are_the_shard_and_it_warns(workers):
    for i, worker in enumerate(workers):
        np.testing.assert_allclose(worker["local_mean"],
                                   shard_data(i)["y"].mean(axis=0), rtol=1e-12)
        assert "TF_CONFIG names several workers" in worker["warning"]
        assert "strategy=" in worker["warning"]


def test_a_worker_with_bad_data_stops_both_with_its_message(workers):
    assert workers[1]["failure"].startswith("ValueError")
    assert "NaN" in workers[1]["failure"]
    assert workers[0]["failure"].startswith("RuntimeError")
    assert "Worker 1 of 2 failed" in workers[0]["failure"]
    assert "NaN" in workers[0]["failure"]


def test_no_strategy_outside_a_scope_is_the_local_reducer():
    from keras_biasinit.distribute import reducer_for
    from keras_biasinit.stats import Reducer

    assert type(reducer_for(None)) is Reducer
    with pytest.raises(TypeError, match="tf.distribute.Strategy"):
        kbi.MeanBias.from_dataset(np.ones(3), strategy="mirrored", verbose=0)
