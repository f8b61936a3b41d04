"""Host memory for the memory decisions: a container's cgroup limit wins over /proc/meminfo."""

from __future__ import annotations

from pathlib import Path

from bench.meter.host import available_memory

GIB = 2**30


def _machine(root: Path, cgroup: str, mem_available_kib: int = 64 * 2**20) -> Path:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup)
    (root / "proc/meminfo").write_text(
        f"MemTotal: {128 * 2**20} kB\nMemAvailable: {mem_available_kib} kB\n"
    )
    return root


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_a_cgroup_v2_limit_tighter_than_meminfo_is_what_is_available(tmp_path):
    root = _machine(tmp_path, "0::/job\n")
    _write(root / "sys/fs/cgroup", {"memory.max": "max\n", "memory.current": str(40 * GIB)})
    _write(
        root / "sys/fs/cgroup/job",
        {
            "memory.max": str(8 * GIB),
            "memory.current": str(3 * GIB),
            "memory.stat": f"anon {2 * GIB}\ninactive_file {GIB}\n",
        },
    )
    mem = available_memory(root)
    # limit 8 - usage 3 + reclaimable page cache 1 = 6 GiB, below MemAvailable's 64 GiB
    assert mem.bytes == 6 * GIB
    assert mem.source == "cgroup v2 /sys/fs/cgroup/job/memory.max (8.0 GiB limit), less its usage"


def test_a_cgroup_v1_limit_in_a_container_sees_its_own_cgroup_at_the_mount_root(tmp_path):
    # The process's cgroup path (/docker/abc) is not mounted inside the container: the mount's
    # root is its cgroup.
    root = _machine(tmp_path, "4:memory:/docker/abc\n3:cpu:/docker/abc\n0::/\n")
    _write(
        root / "sys/fs/cgroup/memory",
        {"memory.limit_in_bytes": str(4 * GIB), "memory.usage_in_bytes": str(GIB)},
    )
    mem = available_memory(root)
    assert mem.bytes == 3 * GIB
    assert mem.source.startswith("cgroup v1 /sys/fs/cgroup/memory/memory.limit_in_bytes (4.0 GiB")


def test_no_limit_or_a_looser_one_leaves_meminfo_and_says_so(tmp_path):
    unlimited = _machine(tmp_path / "a", "4:memory:/\n")
    _write(
        unlimited / "sys/fs/cgroup/memory",
        {"memory.limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": str(GIB)},
    )
    mem = available_memory(unlimited)
    assert (mem.bytes, mem.source) == (64 * GIB, "/proc/meminfo MemAvailable")

    loose = _machine(tmp_path / "b", "0::/\n", mem_available_kib=2 * 2**20)
    _write(loose / "sys/fs/cgroup", {"memory.max": str(100 * GIB), "memory.current": "0"})
    mem = available_memory(loose)
    assert mem.bytes == 2 * GIB and mem.source.endswith("the cgroup's limit is looser")


def test_nothing_readable_is_none_with_a_reason(tmp_path):
    mem = available_memory(tmp_path)
    assert mem.bytes is None and mem.source.startswith("unknown")
