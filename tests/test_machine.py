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


@pytest.mark.parametrize("runnable, others", [("1/110", 0), ("3/112", 2)])
def test_others_running_counts_the_runnable_tasks_but_this_one(tmp_path, runnable, others):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"1.70 1.76 1.82 {runnable} 4242\n")
    assert machine.others_running(samples=3, interval=0, loadavg=str(loadavg)) == others
    assert machine.others_running(samples=1, loadavg=str(tmp_path / "absent")) is None


@pytest.mark.parametrize("set_to, others, policy", [(None, 0, "ACTIVE"), (None, 1, "PASSIVE"), (None, None, "PASSIVE"),
                                                    ("PASSIVE", 0, "PASSIVE"), ("ACTIVE", 3, "ACTIVE")])
def test_training_threads_spin_on_free_cores_and_sleep_on_shared_ones(monkeypatch, set_to, others, policy):
    if set_to is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", set_to)
    monkeypatch.setattr(machine, "others_running", lambda: others)
    assert machine.openmp_wait_policy() == policy
