"""Data larger than memory: uint8 inputs in memory-mapped files (``dataset.storage: mmap``).

(a) Throughput of training on Fashion-MNIST (60k, the benchmark ``cnn``, batch 128) with the
    inputs in a memory-mapped file against the inputs in RAM (both uint8, converted per batch),
    and, for reference, against float32 inputs in RAM (the layout before inputs were stored as
    uint8). The variants alternate in one process (the order rotates every repeat); each run is
    ``train()`` for ``--warmup + --steps`` steps, timed over the last ``--steps`` (wall clock and
    process CPU time), no evaluation in between. Medians over ``--repeats``; goal: mmap / memory
    throughput >= 0.8.

(b) A generated image dataset of ``--gb`` GB (default 2.2) of uint8 3x32x32 images (10 classes:
    a smooth class prototype plus noise) is written straight into an .npy file with
    ``np.lib.format.open_memmap``, chunk by chunk (never whole in RAM), in a temporary folder
    (deleted at the end; free disk space is checked first). A fresh subprocess that does only
    this then opens it with ``np.load(mmap_mode="r")``, passes it through
    ``apply_storage(..., "mmap")`` (kept in place), trains ``--b-steps`` steps of the ``cnn``
    (``--b-width``, batch 128, ``train.threads: 1``) and runs the run's final evaluations (the
    test set and a full pass over the training set for ``train_acc``). It reports its peak RSS
    (``resource.getrusage(RUSAGE_SELF).ru_maxrss``); goal: under 1 GB.

    python benchmarks/data_storage.py [--part a|b|all] [--repeats 5] [--steps 100] [--threads 1]
                                      [--width 32] [--gb 2.2] [--b-steps 300] [--b-width 8] [--b-no-release]

    ``--b-no-release`` (for comparison) turns off the release of a mapping's resident pages: pages
    read from the file then stay in the process's RSS (the kernel may still drop them under
    memory pressure: they are clean file pages).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

# torch and trainwise are imported where used: the process that spawns (b)'s measured run stays
# small, because on Linux a child's ru_maxrss starts from its parent's peak RSS at the fork.

SHAPE = (3, 32, 32)
CLASSES = 10


# ---- (a) throughput on Fashion-MNIST


def timed_run(cfg, data, warmup: int, steps: int) -> tuple[float, float]:
    """(wall s, process CPU s) of optimizer steps warmup+1 .. warmup+steps of one ``train()``."""
    from trainwise.train import train

    marks = {}

    def on_step(step, total):
        if step in (warmup, warmup + steps):
            marks[step] = (time.perf_counter(), time.process_time())

    train(cfg, None, progress=False, data=data, until=warmup + steps, on_step=on_step)
    (w0, c0), (w1, c1) = marks[warmup], marks[warmup + steps]
    return w1 - w0, c1 - c0


def part_a(args, tmp: Path) -> dict:
    from trainwise.data import load_dataset, storage
    from trainwise.data.base import as_float
    from trainwise.study.config import DatasetConfig, TrialConfig

    mem = load_dataset(DatasetConfig(name="fashion-mnist", storage="memory"))
    mapped = storage.apply_storage(mem, "mmap", tmp / "cache")
    variants = {
        "memory (uint8)": mem,
        "mmap (uint8)": mapped,
        "memory (float32, before)": replace(mem, x_train=as_float(mem.x_train), x_test=as_float(mem.x_test)),
    }
    assert storage.is_mapped(mapped.x_train) and not storage.is_mapped(mem.x_train)
    cfg = TrialConfig(dataset={"name": "fashion-mnist"}, model={"name": "cnn", "width": args.width},
                      optimizer={"name": "sgd", "lr": 0.05},
                      train={"epochs": 1, "batch_size": 128, "threads": args.threads, "eval_every": 10**9})
    names = list(variants)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names[r % len(names):] + names[: r % len(names)]:
            w, c = timed_run(cfg, variants[n], args.warmup, args.steps)
            wall[n].append(w)
            cpu[n].append(c)
        print(f"  repeat {r + 1}: " + ", ".join(f"{n} {wall[n][-1]:.2f} s" for n in names), flush=True)
    samples = args.steps * 128
    out = {n: dict(wall_s=statistics.median(wall[n]), cpu_s=statistics.median(cpu[n]),
                   img_per_s=samples / statistics.median(wall[n]), range_s=(min(wall[n]), max(wall[n])))
           for n in names}
    ratios = [m / p for m, p in zip(wall["memory (uint8)"], wall["mmap (uint8)"])]
    out["ratio_mmap_over_memory"] = statistics.median(ratios)
    out["ratio_range"] = (min(ratios), max(ratios))
    f32 = [m / p for m, p in zip(wall["memory (float32, before)"], wall["memory (uint8)"])]
    out["ratio_uint8_over_float32"] = statistics.median(f32)
    return out


# ---- (b) a dataset larger than the RSS budget


def generate(folder: Path, gb: float, n_test: int, seed: int = 0) -> tuple[int, int]:
    """Write x_train.npy (uint8, >= ``gb`` GB), y_train.npy, x_test.npy, y_test.npy; chunked."""
    row = int(np.prod(SHAPE))
    n = int(gb * 1e9) // row + 1
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, (CLASSES, SHAPE[0], 4, 4))
    protos = coarse.repeat(8, axis=2).repeat(8, axis=3).astype(np.int16)  # 4x4 blocks of 8x8 pixels

    def fill(path: Path, count: int) -> np.ndarray:
        x = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, *SHAPE))
        y = (np.arange(count) % CLASSES).astype(np.int64)
        rng.shuffle(y)
        step = 20_000
        for i in range(0, count, step):
            yy = y[i:i + step]
            noise = rng.integers(-60, 61, (len(yy), *SHAPE), dtype=np.int16)
            x[i:i + step] = np.clip(protos[yy] + noise, 0, 255).astype(np.uint8)
            x.flush()
        del x
        return y

    np.save(folder / "y_train.npy", fill(folder / "x_train.npy", n))
    np.save(folder / "y_test.npy", fill(folder / "x_test.npy", n_test))
    return n, n * row


def child_b(folder: Path, steps: int, width: int, release: bool = True) -> None:
    """The measured process: open the arrays mapped, train, evaluate, report peak RSS."""
    import warnings

    import torch

    from trainwise.data import storage
    from trainwise.data.base import TensorData
    from trainwise.study.config import TrialConfig
    from trainwise.train import train

    t0 = time.perf_counter()
    x_train = np.load(folder / "x_train.npy", mmap_mode="r")
    x_test = np.load(folder / "x_test.npy", mmap_mode="r")
    y_train, y_test = np.load(folder / "y_train.npy"), np.load(folder / "y_test.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read-only arrays: torch warns; nothing writes to them
        data = TensorData("generated", torch.from_numpy(x_train), torch.from_numpy(y_train),
                          torch.from_numpy(x_test), torch.from_numpy(y_test), CLASSES)
    if not release:  # for comparison: never hand the mapping's resident pages back
        storage.RESIDENT_CAP = 1 << 62
    data = storage.apply_storage(data, "mmap", folder / "b-cache")
    assert storage.is_mapped(data.x_train) and not (folder / "b-cache").exists()  # kept in place
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = len(y_train)
    cfg = TrialConfig(dataset={"name": "synthetic"},  # a label: the data comes in as ``data``
                      model={"name": "cnn", "width": width}, optimizer={"name": "sgd", "lr": 0.05},
                      train={"epochs": 1, "batch_size": 128, "threads": 1}, budget=steps * 128 / n, seed=0)
    c0 = time.process_time()
    r = train(cfg, None, progress=False, data=data)
    print(json.dumps(dict(
        n_train=n, bytes=int(data.x_train.numel()), steps=r["steps"], train_wall_s=r["wall_time"],
        train_cpu_s=r["cpu_time"], total_wall_s=time.perf_counter() - t0, total_cpu_s=time.process_time() - c0,
        test_acc=r["test_acc"], train_acc=r["train_acc"],
        rss_after_open_kb=rss_start, peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        vm_hwm_kb=vm_hwm_kb())))


def vm_hwm_kb() -> int | None:
    """This process's own peak RSS from /proc (VmHWM; not inherited from the parent)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def part_b(args, tmp: Path) -> dict:
    need = int(args.gb * 1e9) + (1 << 30)
    free = shutil.disk_usage(tmp).free
    if free < need:
        raise SystemExit(f"(b) needs about {need / 1e9:.1f} GB free in {tmp}, {free / 1e9:.1f} GB free")
    t = time.perf_counter()
    gen = subprocess.run([sys.executable, __file__, "--generate", str(tmp), "--gb", str(args.gb), "--n-test",
                          str(args.n_test)], capture_output=True, text=True)  # its written pages: not ours
    if gen.returncode:
        raise SystemExit(f"(b) generation failed:\n{gen.stderr[-3000:]}")
    n, nbytes = json.loads(gen.stdout.strip().splitlines()[-1])
    gen_s = time.perf_counter() - t
    print(f"  generated {n:,} images, {nbytes / 1e9:.2f} GB uint8, in {gen_s:.0f} s", flush=True)
    proc = subprocess.run([sys.executable, __file__, "--child-b", str(tmp), "--b-steps", str(args.b_steps),
                           "--b-width", str(args.b_width)] + ["--b-no-release"] * args.b_no_release,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"(b) child failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["generate_s"] = gen_s
    out["parent_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--width", type=int, default=32, help="(a) cnn width")
    ap.add_argument("--threads", type=int, default=1, help="(a) torch threads")
    ap.add_argument("--gb", type=float, default=2.2)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--b-steps", type=int, default=300)
    ap.add_argument("--b-width", type=int, default=8)
    ap.add_argument("--b-no-release", action="store_true",
                    help="(b) for comparison: keep every page read from the mapping resident")
    ap.add_argument("--child-b", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, default=None, help="parent folder of the temporary files")
    args = ap.parse_args()
    if args.child_b:
        return child_b(args.child_b, args.b_steps, args.b_width, not args.b_no_release)
    if args.generate:
        print(json.dumps(generate(args.generate, args.gb, args.n_test)))
        return
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"{os.cpu_count()} CPUs, RAM {ram / 2**30:.1f} GiB")
    with tempfile.TemporaryDirectory(prefix="trainwise-storage-", dir=args.tmp) as d:
        tmp = Path(d)
        if args.part in ("b", "all"):  # first: this process is still small when it spawns the measured run
            print(f"(b) generated uint8 {'x'.join(map(str, SHAPE))} images, >= {args.gb} GB, mmap, cnn width "
                  f"{args.b_width}, batch 128, 1 thread, {args.b_steps} steps", flush=True)
            b = part_b(args, tmp)
            gb, peak = b["bytes"] / 1e9, b["peak_rss_kb"] / 2**20
            print(f"  dataset {gb:.2f} GB ({b['n_train']:,} images), {b['steps']} steps in "
                  f"{b['train_wall_s']:.1f} s wall / {b['train_cpu_s']:.1f} s CPU; whole child run "
                  f"{b['total_wall_s']:.0f} s wall / {b['total_cpu_s']:.0f} s CPU; test acc {b['test_acc']:.3f}, "
                  f"train acc {b['train_acc']:.3f}")
            print(f"  peak RSS (ru_maxrss) {peak:.2f} GiB ({b['peak_rss_kb'] * 1024 / 1e9:.2f} GB; VmHWM "
                  f"{b['vm_hwm_kb'] / 2**20:.2f} GiB; {b['rss_after_open_kb'] / 2**10:.0f} MiB after imports and "
                  f"opening the data; spawning process {b['parent_peak_rss_kb'] / 2**10:.0f} MiB); "
                  f"goal < 1 GB: {'met' if b['peak_rss_kb'] * 1024 < 1e9 else 'NOT met'}", flush=True)
        if args.part in ("a", "all"):
            print(f"(a) Fashion-MNIST, cnn width {args.width}, batch 128, {args.threads} thread(s), "
                  f"{args.steps} timed steps after {args.warmup}, {args.repeats} repeats")
            a = part_a(args, tmp)
            for k, v in a.items():
                if isinstance(v, dict):
                    print(f"  {k:26s} {v['img_per_s']:8.0f} img/s  median {v['wall_s']:.2f} s wall, "
                          f"{v['cpu_s']:.2f} s CPU  (wall range {v['range_s'][0]:.2f}-{v['range_s'][1]:.2f} s)")
            lo, hi = a["ratio_range"]
            met = "met" if a["ratio_mmap_over_memory"] >= 0.8 else "NOT met"
            print(f"  throughput mmap / memory: {a['ratio_mmap_over_memory']:.3f} (median of per-repeat ratios, "
                  f"range {lo:.3f}-{hi:.3f}; goal >= 0.8: {met})")
            print(f"  throughput uint8 / float32 in memory: {a['ratio_uint8_over_float32']:.3f}")


if __name__ == "__main__":
    main()
