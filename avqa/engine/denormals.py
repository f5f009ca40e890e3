"""Subnormal floats flushed to zero in every thread that computes (``flush_denormals``).

Why: as a model with sharp attention trains, its softmax weights underflow into the subnormal range
(below 1.2e-38) and the gradients through them follow. On Intel cores each arithmetic operation on a
subnormal number takes a microcode assist of about a hundred cycles, so the same matrix products get
slower epoch by epoch (docs/speed.md, TSPM's training on Intel CPUs). TSPM's and QA-TIGER's
--flush_denormals turns it on (``flush_denormals_on`` says what its value means on this machine).
With flush-to-zero and denormals-are-zero set, those values are read and written as zero instead.

``torch.set_flush_denormal`` sets the flag of the calling thread only. The threads of PyTorch's OpenMP
pool copy the flag of the thread that starts them, once, so in a process whose pool already runs it
would reach the main thread alone. Here the flag is also set inside one parallel region of the pool's
own OpenMP runtime, which every pool thread runs.
"""
from __future__ import annotations

import contextlib
import ctypes

import torch

from ..machine import slows_on_subnormals

# --flush_denormals: auto (on where the CPU slows on subnormal floats), on, off
FLUSH_CHOICES = ("auto", "on", "off")
_REGION = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _openmp_runtime() -> ctypes.CDLL | None:
    """The OpenMP runtime this process's PyTorch has loaded (Linux), or None when it cannot be found."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "omp" in line.rsplit("/", 1)[-1] and ".so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "GOMP_parallel"):
            return lib
    return None


def set_everywhere(on: bool) -> bool:
    """Set flush-to-zero and denormals-are-zero to ``on`` in this thread and every OpenMP pool thread.

    Returns whether the CPU supports the flag (False: nothing was changed)."""
    if not torch.set_flush_denormal(on):
        return False
    lib = _openmp_runtime()
    if lib is not None and torch.get_num_threads() > 1:
        # each thread of the team runs this (the caller too); ctypes releases the GIL around the call
        region = _REGION(lambda _: torch.set_flush_denormal(on))
        lib.GOMP_parallel(region, None, ctypes.c_uint(torch.get_num_threads()), ctypes.c_uint(0))
    return True


@contextlib.contextmanager
def flush_denormals():
    """Subnormal floats are zero in every computing thread for the duration; the default again after."""
    supported = set_everywhere(True)
    try:
        yield supported
    finally:
        if supported:
            set_everywhere(False)


def flush_denormals_on(value: bool | str) -> bool:
    """What --flush_denormals ``value`` (auto, on, off, or a checkpoint's recorded bool) means on this machine:
    auto is on where the CPU slows on subnormal floats (avqa.machine.slows_on_subnormals)."""
    if value == "auto":
        return slows_on_subnormals()
    if value in (True, False, "on", "off"):
        return value in (True, "on")
    raise SystemExit(f"--flush_denormals {value!r}: not one of {', '.join(FLUSH_CHOICES)}; give one of them")


def flushed_if(on: bool) -> contextlib.AbstractContextManager:
    """``flush_denormals()`` when ``on``, else nothing."""
    return flush_denormals() if on else contextlib.nullcontext()
