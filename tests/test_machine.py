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
