"""The server's worker thread keeps what it frees as the main thread does (one arena for every thread)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# in a thread, three rounds of allocating, touching and freeing 240 MB; the page faults of each round
_CHILD = """
import resource, sys, threading
import numpy as np
from diffugts import allocator
allocator.keep_freed_memory()
faults = []
def work():
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [np.ones(5 * 2**20) for _ in range(6)]
        del blocks
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(*faults)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_a_thread_reuses_what_it_freed_without_page_faults():
    first, *later = map(int, subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                                            check=True).stdout.split())
    assert first > 0 and all(faults <= first / 20 for faults in later), (first, later)
