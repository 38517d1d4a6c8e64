"""A long-lived process can keep what it frees (the server does), and the memory check then counts more."""

from __future__ import annotations

import subprocess
import sys

import pytest

from diffugts import allocator
from diffugts.backbone.registry import get_config
from diffugts.data.phantom import make_phantom
from diffugts.segment.memory import segmentation_bytes

# allocate and touch 300 MB, free it, and report (kept?, RSS growth left after the free, in MB)
_CHILD = """
import sys
from diffugts import allocator
kept = allocator.keep_freed_memory() if sys.argv[1] == "keep" else False
def rss_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
before = rss_mb()
block = bytearray(300 * 2**20)
block[::4096] = b"x" * len(range(0, len(block), 4096))
del block
print(kept, round(rss_mb() - before))
"""


def _run(mode: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True).stdout
    kept, left = out.split()
    return kept, float(left)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_a_process_that_keeps_freed_memory_holds_it_and_one_that_does_not_returns_it():
    assert _run("default") == ("False", pytest.approx(0, abs=30))
    kept, left = _run("keep")
    assert kept == "True" and left > 250


def test_a_process_that_keeps_freed_memory_is_refused_what_a_one_shot_process_may_run(monkeypatch):
    """The server keeps what it frees and grows more per job: with a budget between the two needs, the memory
    check lets a one-shot process run and refuses the keeping one, with the same advice."""
    from diffugts.errors import DiffuGTSError
    from diffugts.segment.memory import check_memory

    image = make_phantom("kidney tumor", "CT", 32, seed=0).image
    config = get_config("demo-ct")
    plain = segmentation_bytes(image, config, prompts=1, seeds=1)
    monkeypatch.setenv("DIFFUGTS_MEMORY_BUDGET_GB", str(plain * 1.3 / 1024**3))
    check_memory(image, config, prompts=1, seeds=1)
    monkeypatch.setattr(allocator, "_kept", True)
    with pytest.raises(DiffuGTSError, match="needs about .* more than the .* that can be used now"):
        check_memory(image, config, prompts=1, seeds=1)


@pytest.mark.parametrize(("given", "imported", "command"), [(None, None, "1"), ("0", "0", "0")])
def test_the_command_line_puts_torch_on_huge_pages_and_importing_diffugts_does_not(given, imported, command):
    """Inside Slicer every torch-using extension would inherit what an import of diffugts set."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if given is not None:
        env["THP_MEM_ALLOC_ENABLE"] = given
    code = ("import os, diffugts, diffugts.segment, diffugts.serve, torch; torch.zeros(1)\n"
            "seen = [os.environ.get('THP_MEM_ALLOC_ENABLE')]\n"
            "from diffugts.cli import main\n"
            "main(['--progress', 'none', 'weights', 'list'])\n"
            "print(*seen, os.environ.get('THP_MEM_ALLOC_ENABLE'))")
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert output.splitlines()[-1].split() == [str(imported), command]
