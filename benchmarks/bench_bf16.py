"""What bfloat16 gains in the main job (`python -m avqa.pipeline --precision`), part by part: VGGish and ResNet-18 14x14 extraction,
one grounding and one AVST training step (the main job's batch sizes), in float32 and in bfloat16
(the features' bfloat16 weights; autocast for training), on random inputs of the real shapes.

The two precisions alternate round by round, so a machine shared with other work slows both alike;
each figure is the best round's items per second and per CPU-second (all threads).

    python benchmarks/bench_bf16.py               # 3 rounds
    python benchmarks/bench_bf16.py --rounds 5
"""
import argparse
import sys
import time
from types import SimpleNamespace

import torch

from avqa.engine.loop import train_step
from avqa.engine.runtime import Runtime
from avqa.features.network import Runner
from avqa.machine import describe_machine, native_bf16
from avqa.models import AVST, AudioVisualGrounding
from avqa import registry


def extraction(name: str, bf16: bool, inputs: torch.Tensor):
    runner = Runner(name, None, 0, "cpu", bf16)
    return lambda: runner(inputs)


def training(model: torch.nn.Module, loss, batch: dict, bf16: bool):
    rt = Runtime(SimpleNamespace(gpu=None, device="cpu", amp=bf16))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    objective = SimpleNamespace(loss=loss)
    return lambda: train_step(model, batch, optimizer, rt, objective)


def parts(seed: int = 0) -> dict:
    """(items per call, a maker of the call for a precision) of each part."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (16, 3, 224, 224), dtype=torch.uint8, generator=g)
    examples = torch.randn(64, 96, 64, generator=g)
    grd = {"audio": torch.randn(16, 1, 128, generator=g), "visual": torch.randn(16, 1, 512, 14, 14, generator=g),
           "label": torch.randint(0, 2, (16,), generator=g)}
    qa = {"audio": torch.randn(32, 10, 128, generator=g), "visual_posi": torch.randn(32, 10, 512, 14, 14, generator=g),
          "visual_nega": torch.randn(32, 10, 512, 14, 14, generator=g),
          "question": torch.randint(1, 90, (32, 14), generator=g), "label": torch.randint(0, 40, (32,), generator=g)}

    def grd_loss(model, batch):
        loss = torch.nn.functional.cross_entropy(model(batch["audio"], batch["visual"]).float(), batch["label"])
        return {"loss": loss, "answer": loss, "match": None}

    def avst_loss(model, batch):
        return registry.qa_models()["avst"].loss(model, batch, 0.5)

    return {
        "VGGish extraction (examples)": (64, lambda bf16: extraction("vggish", bf16, examples)),
        "ResNet-18 14x14 extraction (frames)": (16, lambda bf16: extraction("res18_14x14", bf16, frames)),
        "grounding training step (samples)": (16, lambda bf16: training(
            _seeded(AudioVisualGrounding), grd_loss, grd, bf16)),
        "AVST training step (samples)": (32, lambda bf16: training(_seeded(lambda: AVST(90, 40)), avst_loss, qa, bf16)),
    }


def _seeded(make):
    torch.manual_seed(0)
    return make()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of each part and precision (default: 3)")
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    if not native_bf16("cpu"):
        print("this CPU has no bfloat16 instructions: the main job computes in float32 here, nothing to measure")
        return 0
    print(f"{'part':<38}{'float32 /s':>12}{'/CPU-s':>9}{'bfloat16 /s':>13}{'/CPU-s':>9}{'speed-up':>10}")
    for what, (items, make) in parts().items():
        calls = {bf16: make(bf16) for bf16 in (False, True)}
        best = {bf16: (0.0, 0.0) for bf16 in calls}
        for bf16, call in calls.items():
            call()  # warm-up: first-call allocation and kernel choice
        for _ in range(a.rounds):
            for bf16, call in calls.items():
                wall, cpu = time.perf_counter(), time.process_time()
                call()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[bf16] = (max(best[bf16][0], items / wall), max(best[bf16][1], items / max(cpu, 1e-9)))
        (w32, c32), (w16, c16) = best[False], best[True]
        print(f"{what:<38}{w32:>12.1f}{c32:>9.1f}{w16:>13.1f}{c16:>9.1f}{w16 / w32:>9.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
