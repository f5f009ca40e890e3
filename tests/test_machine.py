"""The machine line and the CPU facts the defaults are chosen from."""
import pytest

from avqa import machine


@pytest.mark.parametrize("flags, native", [
    ("fpu sse avx2 avx512f avx512bw avx512vl avx512_vnni", False),   # an AVX-512 Xeon without BF16 (Ice Lake)
    ("fpu avx512f avx512bw avx512_bf16", True),                        # AVX-512 BF16 (Zen 4 and later, Cooper Lake)
    ("fpu avx512f avx512_bf16 amx_bf16 amx_tile", True),               # AMX (Sapphire Rapids and later)
    ("fp asimd bf16 i8mm", True),                                      # Arm's BF16 ("Features" line)
    ("fpu sse sse2 avx avx2 fma", False),
])
def test_native_bf16_follows_the_cpu_flags_not_onednn_emulation(monkeypatch, flags, native):
    """oneDNN says yes on every AVX-512 CPU, where bfloat16 is emulated and several times slower than
    float32: the kernel's flags decide."""
    monkeypatch.setattr(machine, "_cpuinfo", lambda field: flags if field in ("flags", "features") else None)
    assert machine.native_bf16("cpu") is native


def test_native_bf16_asks_onednn_where_the_flags_cannot_be_read(monkeypatch):
    import torch
    monkeypatch.setattr(machine, "_cpuinfo", lambda field: None)
    assert machine.native_bf16("cpu") is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _cpuinfo_text(vendor: str) -> str:
    """Two processors of a /proc/cpuinfo as the kernel writes it."""
    one = (f"processor\t: {{n}}\nvendor_id\t: {vendor}\ncpu family\t: 6\nmodel\t\t: 106\n"
           f"model name\t: a CPU\nflags\t\t: fpu sse avx2 avx512f\n\n")
    return one.format(n=0) + one.format(n=1)


@pytest.mark.parametrize("vendor, slows", [("GenuineIntel", True),    # microcode assists on subnormals
                                           ("AuthenticAMD", False),   # Zen computes them at full speed
                                           ("HygonGenuine", False)])
def test_slows_on_subnormals_reads_the_vendor_of_cpuinfo(vendor, slows):
    assert machine.slows_on_subnormals(_cpuinfo_text(vendor)) is slows


def test_slows_on_subnormals_is_no_where_no_vendor_is_named():
    assert machine.slows_on_subnormals("processor\t: 0\nFeatures\t: fp asimd bf16\n") is False  # Arm
    assert machine.slows_on_subnormals("") is False
