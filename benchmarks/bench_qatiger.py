"""QA-TIGER training speed: this project's model against the release's computation, in one process.

Both train with the release's recipe (batch 32, Adam at 1e-4 with betas (0.95, 0.999), cross-entropy)
on random features of the release's shapes held in memory (VGGish [60,128], CLIP frames [60,768], ToMe
tokens [60,14,1024]) and the frozen CLIP ViT-L/14 text tower (width 768, 12 layers, random weights),
so only the model's forward, backward and step are timed. The release's computation is
tests/qatiger_reference.py. The questions of each batch are drawn from the real json_update test file
where it is found (9,129 questions, 1,298 distinct sentences; $AVQA_REAL_ANNOTATIONS or
../shared/data/music_avqa), otherwise from 1,300 random sentences each asked 7 times.

The release steps torch's default Adam; ours the engine's (fused). Ours is timed twice: with its store
of text-encoder outputs off (every batch encoded, as the release does), and with the store filled, as
it is from the second epoch on (each distinct question encoded once). The three take their steps in
turns, one each per round, under one subnormal-float setting (benchmarks/turns.py says why).

    python benchmarks/bench_qatiger.py                  # 1 warm-up and 3 timed rounds
    python benchmarks/bench_qatiger.py --steps 5 --device cuda
"""
import argparse
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from avqa.machine import describe_machine
from avqa.qatiger.model import QATiger
from avqa.qatiger.run import qatiger_adam

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]
from qatiger_reference import RefQATiger  # noqa: E402  (the release's computation lives with the tests)
from turns import flush_flags, flush_settings, report, step_flops, timed_in_turns  # noqa: E402


def question_pool(g: torch.Generator) -> torch.Tensor:
    """CLIP token ids of every question of the real test file, or of a stand-in pool of the same repetition."""
    for folder in (os.environ.get("AVQA_REAL_ANNOTATIONS"), ROOT.parent / "shared" / "data" / "music_avqa"):
        path = Path(folder or "") / "json_update" / "avqa-test.json"
        if folder and path.is_file():
            import json

            from avqa.features.clip import tokenize
            from avqa.qatiger.data import question_text
            return tokenize([question_text(r) for r in json.loads(path.read_text())])
    distinct = torch.randint(1, 49406, (1300, 77), generator=g)
    ends = torch.randint(5, 20, (1300,), generator=g)
    for i, e in enumerate(ends.tolist()):
        distinct[i, e], distinct[i, e + 1:] = 49407, 0
    return distinct.repeat(7, 1)


def batches(n: int, size: int, device: str, seed: int = 0) -> tuple[list[dict], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pool = question_pool(g)
    a, v = torch.randn(size, 60, 128, generator=g), torch.randn(size, 60, 768, generator=g)
    p = torch.randn(size, 60, 14, 1024, generator=g)
    out = []
    for _ in range(n):
        rows = torch.randint(0, len(pool), (size,), generator=g)
        out.append({k: t.to(device) for k, t in dict(audio=a, video=v, patch=p, question=pool[rows],
                                                     target=torch.randint(0, 42, (size,), generator=g)).items()})
    return out, pool


def trainer(model, device: str, engine: bool):
    """One training step of ``model`` on a batch: ``step(batch)``.

    ``engine``: QA-TIGER's Adam as the engine trains it (avqa.qatiger.run.qatiger_adam, fused), else torch's
    default Adam as the release builds it."""
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = qatiger_adam(model, SimpleNamespace(lr=1e-4, betas=(0.95, 0.999))) if engine else \
        torch.optim.Adam(trained, lr=1e-4, betas=(0.95, 0.999))

    def step(d: dict) -> None:
        optimizer.zero_grad()
        F.cross_entropy(forward(model, d), d["target"]).backward()
        optimizer.step()
    return step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=32, help="questions per batch (default: 32, the release's)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing (default: 1)")
    p.add_argument("--steps", type=int, default=3, help="timed rounds, one training step of each model each "
                                                        "(default: 3)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    flush_flags(p)
    a = p.parse_args()
    print(f"machine: {describe_machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {a.device}", flush=True)
    data, pool = batches(a.warmup + a.steps, a.batch_size, a.device)
    text = dict(width=768, layers=12, heads=12, embed_dim=768)
    torch.manual_seed(0)
    release = RefQATiger(42, text=text).to(a.device)
    ours = QATiger(42, text={**text, "cache": 0}).to(a.device)
    ours.load_state_dict(release.state_dict())
    cached = QATiger(42, text={**text, "cache": 8192}).to(a.device)
    cached.load_state_dict(release.state_dict())
    for i in range(0, len(pool), 256):            # the store as the second epoch finds it
        cached.quest_encoder(pool[i:i + 256].to(a.device))
    release_name, filled = "release (tests/qatiger_reference.py)", "avqa.qatiger QATiger, text store filled (epoch 2 on)"
    models = {release_name: release, "avqa.qatiger QATiger, text store off": ours, filled: cached}
    flops = {name: step_flops(model, forward, data[0]) for name, model in models.items()}
    steps = {}
    for name, model in models.items():
        step, turn = trainer(model, a.device, engine=model is not release), iter(data)
        steps[name] = lambda step=step, turn=turn: step(next(turn))
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    print(f"load average before: {os.getloadavg()}", flush=True)
    seconds = timed_in_turns(steps, a.warmup, a.steps, flush_settings(list(models), a, release_name), sync)
    print(f"load average after: {os.getloadavg()}", flush=True)
    print("\n" + report(seconds, flops, a.batch_size, release_name))
    print(f"at equal GFLOP/s the filled store's bound is {flops[release_name] / flops[filled]:.2f}x the release")
    return 0


def forward(model, d: dict) -> torch.Tensor:
    return model(d["audio"], d["video"], d["patch"], d["question"])


if __name__ == "__main__":
    sys.exit(main())
