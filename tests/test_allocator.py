"""The allocator settings (``cams.allocator``): a forward pass's freed tensors are reused, so the
next pass faults in no fresh pages. The kernel's own count of minor page faults decides, in a
process of its own with glibc's defaults and in one with the settings."""

import subprocess
import sys

import pytest

from cams.allocator import glibc

PASSES = """
import resource, sys, torch
from cams.allocator import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, 2, 1), torch.nn.ReLU(),
                            torch.nn.Conv2d(32, 64, 3, 1, 1), torch.nn.ReLU(),
                            torch.nn.Conv2d(64, 16, 3, 2, 1)).eval()
inputs = torch.rand(2, 3, 224, 224)  # activations of 3-6 MB, as a Lite0 pass at batch 1
def passes():
    with torch.no_grad():
        for _ in range(10):
            model(inputs)
passes()  # the first passes fault the heap in
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
passes()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    answer = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True,
                            timeout=120, check=True)
    return int(answer.stdout.split()[-1])


@pytest.mark.skipif(glibc() is None, reason="the settings are glibc's")
def test_freed_tensors_are_reused_without_page_faults():
    default, reused = page_faults("default"), page_faults("reuse")
    # 44,760 and 0 on the 2-core CI machine (2026-12-07): each pass's 5 MB activations were
    # mapped anew and faulted in page by page.
    assert default > 5000, default
    assert reused < default / 20, (reused, default)
