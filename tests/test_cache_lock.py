"""Two processes that need the same missing prefix-cache store: one builds, the other waits and
opens what was built; the store left behind is one valid store."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import torch

from bench.cache.lock import open_or_build
from bench.cache.store import StoreWriter, open_store, store_paths

KEY = "race" * 8
DIM = 4
CLIPS = 12


def _build(directory: Path, tag: int) -> None:
    with StoreWriter(directory, KEY, {"format": 1}, "float32", DIM) as writer:
        for i in range(CLIPS):
            # Slow enough that the other process arrives while this one builds; the rows say
            # which process wrote them.
            time.sleep(0.03)
            writer.add(f"clip{i}", torch.full((3, DIM), float(tag * 100 + i)), 48_000)
        writer.commit()


def _racer(directory: str, tag: int, start, out) -> None:
    folder = Path(directory)
    start.wait()  # both processes leave the barrier together: a real race for the build
    store, outcome = open_or_build(
        folder,
        KEY,
        lambda: open_store(folder, KEY, "memory", 1),
        lambda: _build(folder, tag),
    )
    out.put((tag, outcome.built, outcome.waited_s, outcome.lock, float(store.rows_of(0)[0, 0])))


def test_two_processes_racing_for_one_store_build_it_once(tmp_path):
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), t, start, out)) for t in (1, 2)]
    for p in procs:
        p.start()
    got = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    built = [g for g in got if g[1]]
    assert len(built) == 1, got  # one builder
    waiter = next(g for g in got if not g[1])
    assert waiter[2] > 0.1 and waiter[3] == "fcntl"  # it waited for the build, under the lock
    assert waiter[4] == built[0][4] == built[0][0] * 100  # both read the builder's rows
    # One valid store and nothing else: no temporary files, every checksum verifies.
    payload, index = store_paths(tmp_path, KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [payload.name, index.name, f"{KEY}.lock"]
    )
    store = open_store(tmp_path, KEY, "disk", 1)
    assert len(store.index.clip_keys) == CLIPS


def test_an_unusable_store_is_rebuilt_under_the_lock(tmp_path):
    _build(tmp_path, 1)
    payload, _ = store_paths(tmp_path, KEY)
    data = bytearray(payload.read_bytes())
    data[5] ^= 0xFF  # one flipped byte: clip 0 fails its CRC32
    payload.write_bytes(bytes(data))
    store, outcome = open_or_build(
        tmp_path, KEY, lambda: open_store(tmp_path, KEY, "memory", 1), lambda: _build(tmp_path, 2)
    )
    assert outcome.built and "CRC32" in outcome.rebuilt_because
    assert float(store.rows_of(0)[0, 0]) == 200.0
    _, again = open_or_build(
        tmp_path, KEY, lambda: open_store(tmp_path, KEY, "memory", 1), lambda: _build(tmp_path, 3)
    )
    assert not again.built and again.lock == "not needed"


KILLED_BUILD = (
    "import sys, torch; from pathlib import Path; from bench.cache.store import StoreWriter; "
    "w = StoreWriter(Path(sys.argv[1]), sys.argv[2], {'format': 1}, 'float32', 4); "
    "w.add('clip0', torch.zeros(3, 4), 48_000); w._file.flush(); "
    "print('writing', flush=True); sys.stdin.read()"
)


def test_a_build_killed_mid_write_leaves_no_temp_file_after_the_next_open(tmp_path):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(tmp_path), KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)  # nothing of the builder can clean up
    proc.wait()
    [leftover] = tmp_path.glob(f"{KEY}.bin.tmp-*")
    assert leftover.stat().st_size == 3 * DIM * 4
    other_host = tmp_path / f"{KEY}.bin.tmp-elsewhere-{proc.pid}"  # a build on another node
    other_host.write_bytes(b"x")
    store, outcome = open_or_build(
        tmp_path, KEY, lambda: open_store(tmp_path, KEY, "memory", 1), lambda: _build(tmp_path, 1)
    )
    assert outcome.built and len(store.index.clip_keys) == CLIPS
    assert not list(tmp_path.glob("*.tmp-*"))  # the dead one's, and the other node's under the lock


def test_an_open_leaves_temp_files_of_live_builders_alone(tmp_path):
    from bench.cache.store import remove_stale_temps, temp_path

    _build(tmp_path, 1)
    mine = temp_path(store_paths(tmp_path, KEY)[0])  # this process: alive
    mine.write_bytes(b"x")
    elsewhere = tmp_path / f"{KEY}.bin.tmp-elsewhere-1"
    elsewhere.write_bytes(b"x")
    assert remove_stale_temps(tmp_path, KEY) == []
    assert mine.exists() and elsewhere.exists()
