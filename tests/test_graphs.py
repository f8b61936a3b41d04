"""`+graph`'s bookkeeping on a CPU: one capture per shape and precision, the new batch copied into
the graph's inputs before each replay, outputs handed out as copies.

CUDA is replaced by stand-ins here: a "graph" re-runs the captured function on its static
inputs and writes the result into its static outputs, which is what a replay does to memory.
Whether real graphs compute what the eager prefix computes is checked on a GPU
(tests/gpu/test_gpu.py).
"""

import contextlib

import pytest
import torch

from bench.errors import BenchError
from bench.model.graphs import PrefixGraphs
from bench.model.ser import build_model
from strategies import parse_strategy
from tests.conftest import padded_pair

_capturing: list = []  # the fake graph being captured, if any


class _FakeGraph:
    def __init__(self):
        self.recorded = None
        self.replays = 0

    def replay(self):
        fn, inputs, outputs = self.recorded
        for out, new in zip(outputs, fn(*inputs), strict=True):
            out.copy_(new)
        self.replays += 1

    def pool(self):
        return "pool"


class _Stream:
    def wait_stream(self, other):
        pass


@contextlib.contextmanager
def _fake_capture(graph, pool=None, stream=None, capture_error_mode="global"):
    _capturing.append(graph)
    try:
        yield
    finally:
        _capturing.pop()


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", _fake_capture)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: _Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _Stream())


def _recording(prefix):
    """`prefix`, registering itself with the fake graph under capture (where a real capture
    would record its kernels)."""

    def run(*inputs):
        outputs = prefix(*inputs)
        if _capturing:
            _capturing[-1].recorded = (prefix, inputs, outputs)
        return outputs

    return run


def _graphs(spelling="partial1"):
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy(spelling).strategy)
    model.eval()
    runner = PrefixGraphs(
        _recording(model.frozen_features), model.frozen_modules(), torch.device("cuda")
    )
    return model, runner


@pytest.mark.parametrize("spelling", ["partial1", "lora1", "head"])
@torch.no_grad()
def test_each_shape_is_captured_once_and_every_call_sees_its_own_batch(fake_cuda, spelling):
    model, runner = _graphs(spelling)
    x, mask = padded_pair()
    short = (x[:, :8_000].clone(), mask[:, :8_000].clone())
    other = (torch.randn_like(x), mask)  # the first shape again, other audio
    for inputs in (padded_pair(), short, other, padded_pair()):
        hidden, frames = runner(*inputs)
        want_hidden, want_frames = model.frozen_features(*inputs)
        assert torch.equal(hidden, want_hidden) and torch.equal(frames, want_frames)
    assert runner.count == 2
    assert sorted(c.graph.replays for c in runner.graphs.values()) == [1, 3]
    buffers = sum(
        t.numel() * t.element_size()
        for inputs in (padded_pair(), short)
        for t in (*inputs, *model.frozen_features(*inputs))
    )
    assert runner.buffers_mib() == buffers / 2**20
    assert "2 CUDA graphs" in runner.note()


@torch.no_grad()
def test_replayed_outputs_are_copies_the_next_replay_does_not_overwrite(fake_cuda):
    _, runner = _graphs()
    x, mask = padded_pair()
    first, _ = runner(x, mask)
    kept = first.clone()
    runner(torch.randn_like(x), mask)
    assert torch.equal(first, kept)


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")
@torch.no_grad()
def test_a_precision_change_is_a_new_graph(fake_cuda):
    _, runner = _graphs()
    x, mask = padded_pair()
    runner(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # stands in for the CUDA autocast state
        torch.set_autocast_enabled("cuda", True)
        try:
            runner(x, mask)
        finally:
            torch.set_autocast_enabled("cuda", False)
    assert runner.count == 2


def test_a_prefix_in_training_mode_is_refused_before_capture(fake_cuda):
    # partial4 on the 4-layer tiny model: no frozen transformer layer, so the projection's and
    # encoder's dropout run in training mode and would be replayed with one mask.
    model, runner = _graphs("partial4")
    model.train()
    with pytest.raises(BenchError, match=r"runs in training mode.*at least one transformer layer"):
        runner(*padded_pair())
    assert runner.count == 0


@pytest.fixture
def stand_in_graphs(fake_cuda, monkeypatch):
    """`+graph` set up as usual, but with stand-in graphs: only the device check is bypassed."""
    from bench.model import ser as model_module

    monkeypatch.setattr(
        model_module,
        "PrefixGraphs",
        lambda prefix, frozen, device: PrefixGraphs(
            _recording(prefix), frozen, torch.device("cuda")
        ),
    )


def test_the_length_sweep_measures_a_graph_strategy(stand_in_graphs):
    from bench.cli.ceiling import ceilings_for

    (c,) = ceilings_for("tiny-w2v2", "partial1+amp+graph", 2, [8_000], torch.device("cpu"), 0.05)
    assert c.samples_per_s > 0 and c.profile.host_ops > 0


def test_a_graph_run_equals_the_eager_run(stand_in_graphs, tiny_config):
    # The whole run as a sweep runs it: `+graph` set up by setup_run, training steps, evaluation
    # under no_grad, the best epoch restored, the test pass, the in-run ceiling, the result;
    # each prefix comes out of a (stand-in) graph.
    import dataclasses

    from bench.train.worker import run_one

    eager = run_one(dataclasses.replace(tiny_config, strategy="partial2"))
    graphed = run_one(dataclasses.replace(tiny_config, strategy="partial2+graph"))
    assert eager.status == graphed.status == "ok"
    assert graphed.strategy_spec["cuda_graph"] and not eager.strategy_spec["cuda_graph"]
    assert graphed.predictions.pred == eager.predictions.pred
    assert graphed.metrics.ccc == eager.metrics.ccc
    (note,) = [n for n in graphed.notes if "CUDA graphs" in n]
    assert int(note.split(" ran as ")[1].split()[0]) >= 2
    assert graphed.efficiency.harness_efficiency is not None
    # Every capture (training and evaluation shapes) sets the step after it aside; eager has none.
    g, e = graphed.efficiency.throughput, eager.efficiency.throughput
    assert e.capture_warmup_steps == 0 and g.capture_warmup_steps >= 1
    assert g.steps_timed + g.shape_warmup_steps == e.steps_timed + e.shape_warmup_steps
    assert g.shape_warmup_steps == e.shape_warmup_steps + g.capture_warmup_steps


def test_the_plan_calibrates_a_graph_strategy(stand_in_graphs):
    from bench.config import PROFILES
    from bench.data.batching import LengthGrid
    from bench.plan.calibrate import calibrate

    grid = LengthGrid.from_lengths([8_000, 12_000, 16_000])
    cal = calibrate(
        "partial1+amp+graph", "tiny-w2v2", PROFILES["smoke"].train, grid, 3, torch.device("cpu"),
        points=2, point_seconds=0.1, rounds=1,
    )  # fmt: skip
    assert cal.train is not None and len(cal.train.points) == 2
