"""Where each epoch of a family's training on a main job's set goes: seconds per phase and memory, epoch by epoch.

Trains the main model of a family of the registry (``--family``: avst, tspm, ...; what its entry's
``train_config`` gives: the main job's training of it, with its demo recipe, or its tiny one with --tiny)
on the features of a set made by ``python -m avqa.pipeline`` (``--data``: its data/ folder; TSPM's
features need --tspm), writing checkpoints, log and TensorBoard scalars under ``--out``, with the
engine's breakdown timer on (avqa.engine.breakdown). Prints, per epoch: the wall seconds spent waiting
for batches (data), in the forward pass with the loss, backward, the optimiser step, the step's logging
(progress bar, TensorBoard, log lines), validation and checkpoint writes, the rest, the epoch's wall and
CPU seconds, the training pass's samples/s (the run log's figure) and the process's resident memory;
with the machine line and the load average before and after (the cores may be shared). A slowdown that
grows epoch by epoch shows as a growing column.

OpenMP's wait policy is the one the main job gives its training processes (avqa.machine.openmp_wait_policy:
ACTIVE on free cores, PASSIVE on shared ones, unless OMP_WAIT_POLICY is set); the machine line prints it.

    python benchmarks/bench_train_breakdown.py --family tspm --data /path/to/set/data --out /tmp/breakdown
    python benchmarks/bench_train_breakdown.py --family tspm --data ... --out ... --epochs 6 --flush_denormals off
    python benchmarks/bench_train_breakdown.py --family avst --data ... --out ... --test
"""
import os

from avqa.machine import openmp_wait_policy

os.environ["OMP_WAIT_POLICY"] = openmp_wait_policy()  # read when torch's OpenMP runtime loads, so before torch

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from avqa import registry  # noqa: E402


def trained_families() -> list[str]:
    """The registered families whose entry says how the main job trains them (``train_config``)."""
    return [e.name for e in registry.entries() if e.train_config is not None]


def family_config(family: str, data: Path, out: Path, tiny: bool, settings: dict):
    """(config, run): ``family``'s main-job training on ``data``, its outputs under ``out``, ``settings`` over it."""
    import json
    seconds = json.loads((data / "feats" / "vggish.json").read_text())["seconds"]
    job = SimpleNamespace(data=data, out=out, feats=data / "feats", seconds=seconds, tiny=tiny,
                          args=SimpleNamespace(device=settings.pop("device", None)))
    return registry.entry(family).train_config(job, **settings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=trained_families(), default="tspm",
                   help="the family whose main model trains (the registry's families with a train_config; "
                        "default: tspm)")
    p.add_argument("--data", type=Path, required=True,
                   help="the set's data/ folder with the family's features (python -m avqa.pipeline made them); "
                        "only read")
    p.add_argument("--out", type=Path, required=True,
                   help="where the run's checkpoints, log, TensorBoard scalars and results go (a fresh run each "
                        "time: its checkpoints there are overwritten)")
    p.add_argument("--tiny", action="store_true", help="the --tiny main job's recipe instead of the default one")
    p.add_argument("--epochs", type=int, default=None, help="epochs to train (default: the recipe's)")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=True,
                   help="write TensorBoard scalars as the main job does (default: on)")
    p.add_argument("--save_state", type=Path, default=None,
                   help="also save the last epoch's weights here (compare two code versions' weights with torch.equal)")
    p.add_argument("--flush_denormals", choices=("auto", "on", "off"), default=None,
                   help="the run's --flush_denormals, for a family whose config has it (TSPM: subnormal floats "
                        "flushed to zero in every thread, avqa.engine.denormals; auto: on on Intel CPUs). Default: "
                        "the family's default, as the main job runs it")
    p.add_argument("--test", action="store_true",
                   help="then test the best checkpoint on the test split, writing <out>/<family>_test.json (the "
                        "report whose predictions two code versions should share)")
    return p


def main() -> int:
    a = build_parser().parse_args()
    if not (a.data / "feats" / "vggish.json").is_file():
        print(f"--data {a.data}: no feats/vggish.json there: point --data at the data/ folder of a set the main "
              f"job made", file=sys.stderr)
        return 1
    import torch

    from avqa.engine.breakdown import record, table
    from avqa.machine import cpu_details, describe_machine, slows_on_subnormals
    chosen = {} if a.flush_denormals is None else {"flush_denormals": a.flush_denormals}
    cfg, run = family_config(a.family, a.data.resolve(), a.out.resolve(), a.tiny,
                             {"overwrite": True, "quiet": True, **chosen})
    if chosen and not hasattr(cfg, "flush_denormals"):
        print(f"--flush_denormals: the family {a.family} has no such setting; leave the flag out", file=sys.stderr)
        return 1
    if a.epochs is not None:
        cfg.epochs = a.epochs
    if not a.tensorboard:
        cfg.tensorboard_dir = ""
    print(f"machine: {describe_machine()}; {cpu_details()}; slows on subnormal floats: "
          f"{'yes' if slows_on_subnormals() else 'no'}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    if hasattr(cfg, "flush_denormals"):
        print(f"--flush_denormals {cfg.flush_denormals} (the run's log and checkpoint record what it meant here)",
              flush=True)
    with record() as b:
        code = run(cfg)
    print(f"load average after: {os.getloadavg()}")
    print(f"\n{registry.entry(a.family).title} training ({cfg.model}), batch {cfg.batch_size}, {cfg.epochs} epochs: "
          f"wall seconds per phase of each epoch")
    print(table(b))
    if a.save_state is not None:
        state = torch.load(Path(cfg.model_save_dir) / f"{cfg.checkpoint}_last.pt", map_location="cpu", weights_only=False)
        torch.save(state["state_dict"], a.save_state)
    if code == 0 and a.test:
        test_cfg, run = family_config(a.family, a.data.resolve(), a.out.resolve(), a.tiny,
                                      {"mode": "test", "quiet": True, **chosen,
                                       "results": str(a.out.resolve() / f"{a.family}_test.json")})
        code = run(test_cfg)
    return code


if __name__ == "__main__":
    sys.exit(main())
