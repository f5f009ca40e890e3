"""Which machine a timing comes from: the CPU model, its cores and the GPU, printed beside every figure."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpuinfo(field: str, text: str | None = None) -> str | None:
    """The first CPU's ``field`` in /proc/cpuinfo (e.g. 'model name', 'cpu family', 'flags'), if any;
    ``text``: a cpuinfo's text to read instead of this machine's."""
    try:
        text = Path("/proc/cpuinfo").read_text() if text is None else text
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == field:
            return value.strip()
    return None


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (e.g. 'AMD EPYC'), or the platform's guess."""
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown CPU"


def cpu_details() -> str:
    """CPU family and the bfloat16/AMX flags: two 2-core machines of one model name can differ in these."""
    flags = set((_cpuinfo("flags") or "").split())
    has = {flag: "yes" if flag in flags else "no" for flag in ("avx512_bf16", "amx_bf16")}
    return f"CPU family {_cpuinfo('cpu family') or '?'}; " + "; ".join(f"{k} {v}" for k, v in has.items())


# the CPU flags (/proc/cpuinfo) of bfloat16 arithmetic in hardware: x86's AVX-512 BF16 and AMX, Arm's BF16
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (a GPU, or a CPU with AVX-512 BF16 or AMX),
    where bfloat16 runs faster than float32; elsewhere it is emulated and slower.

    oneDNN's own answer (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) is also yes on any AVX-512
    CPU, where it emulates bfloat16 at a fraction of float32's speed, so the kernel's CPU flags
    decide where they can be read."""
    import torch
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    flags = _cpuinfo("flags") or _cpuinfo("features")   # x86, or Arm's name for the same line
    if flags is not None:
        return bool(BF16_FLAGS & set(flags.split()))
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# the CPU vendors whose cores take a slow microcode assist on each arithmetic operation with a subnormal float
# (below 1.2e-38): Intel's; AMD's Zen cores compute them at full speed
SLOW_SUBNORMAL_VENDORS = frozenset({"GenuineIntel"})


def slows_on_subnormals(cpuinfo: str | None = None) -> bool:
    """Whether this machine's CPU slows down on subnormal floats (an Intel CPU: /proc/cpuinfo's vendor_id
    GenuineIntel), where flushing them to zero keeps a model's speed (avqa.engine.denormals).
    ``cpuinfo``: the text of a /proc/cpuinfo to read instead of this machine's."""
    vendor = _cpuinfo("vendor_id", cpuinfo)
    return vendor in SLOW_SUBNORMAL_VENDORS


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity (a container's or taskset's limit), not every
    CPU of the host that ``os.cpu_count()`` counts."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def others_running(samples: int = 20, interval: float = 0.05, loadavg: str = "/proc/loadavg") -> float | None:
    """How many other tasks want a CPU now: the median, over ``samples`` readings ``interval`` seconds apart, of
    the kernel's count of runnable tasks (/proc/loadavg's fourth field) less this process. Unlike the load
    average, which trails by a minute and counts the main job's own last stage, it says whether the cores are
    shared at this moment. None where the file cannot be read."""
    import statistics
    import time
    counts = []
    for i in range(samples):
        try:
            counts.append(int(Path(loadavg).read_text().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return statistics.median(counts)


def openmp_wait_policy() -> str:
    """The OMP_WAIT_POLICY for a training process about to start: the environment's where it is set; else ACTIVE
    where no other task wants a CPU now (others_running), PASSIVE where the cores are shared.

    A TSPM or QA-TIGER step is thousands of small operations. On free cores, threads that spin briefly at
    each one's end start the next at once; on shared cores a spinning thread takes the core its partner needs
    (docs/tspm.md, On the embedded default, has both figures). The weights are the same either way. The policy
    is read once, when the OpenMP runtime loads."""
    chosen = os.environ.get("OMP_WAIT_POLICY")
    if chosen:
        return chosen
    others = others_running()
    return "ACTIVE" if others is not None and others < 0.5 else "PASSIVE"


def describe_machine() -> str:
    """One line naming the machine, e.g. 'AMD EPYC, 2 cores; no GPU'."""
    text = f"{cpu_model()}, {usable_cores()} cores"
    try:
        import torch
        if torch.cuda.is_available():
            text += "; GPU " + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        else:
            text += "; no GPU"
    except ImportError:
        pass
    return text
