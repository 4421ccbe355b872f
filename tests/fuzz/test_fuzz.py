"""Fuzzed study configs through the real command line: each runs (exit 0) or is refused with one
line and exit 2, never a traceback, never a hang.

Each file in corpus/ states what it expects in its first line, ``# expect: ok``, ``# expect: error``
or ``# expect: error-without-cuda`` (an error unless CUDA is there); binary and encoding cases,
which cannot carry a comment, are listed in expect.json.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from trainwise.cli import main

HERE = Path(__file__).parent
CORPUS = sorted((HERE / "corpus").iterdir())
MANIFEST = json.loads((HERE / "expect.json").read_text())
HANG_SECONDS = 60


def expectation(path: Path) -> str:
    if path.name in MANIFEST:
        return MANIFEST[path.name]
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ok|error'"
    expect = first.removeprefix("# expect: ").strip()
    if expect == "error-without-cuda":
        return "ok" if torch.cuda.is_available() else "error"
    return expect


def test_corpus_is_large_and_every_case_declares_its_expectation():
    assert len(CORPUS) >= 100
    assert set(MANIFEST) <= {p.name for p in CORPUS}
    assert {expectation(p) for p in CORPUS} == {"ok", "error"}


def _hung(signum, frame):
    raise TimeoutError(f"case ran longer than {HANG_SECONDS} s")


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_case(path, tmp_path, capsys):
    expect = expectation(path)
    threads = torch.get_num_threads()  # a config's train.threads sets it for the process
    old = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(HANG_SECONDS)
    try:
        code = main(["study", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if expect == "ok":
        assert code == 0, err
    else:
        assert code == 2, (code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trainwise: error: "), err
