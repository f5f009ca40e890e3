"""Where each epoch of TSPM's training on a main job's set goes: seconds per phase and memory, epoch by epoch.

Trains TSPM with the main job's recipe (TSPM's registry entry, its demo recipe, or its tiny one with --tiny) on the features of a set
made by ``python -m avqa.pipeline --tspm`` (``--data``: its data/ folder), writing checkpoints, log and
TensorBoard scalars under ``--out``, with the engine's breakdown timer on (avqa.engine.breakdown). Prints,
per epoch: the wall seconds spent waiting for batches (data), in the forward pass with the loss, backward,
the optimiser step, the step's logging (progress bar, TensorBoard, log lines), validation and checkpoint
writes, the rest, the epoch's wall and CPU seconds, the training pass's samples/s (the run log's figure)
and the process's resident memory; with the machine line and the load average before and after (the
cores may be shared). A slowdown that grows epoch by epoch shows as a growing column.

The training process is started as the main job starts it (OMP_WAIT_POLICY=PASSIVE unless set).

    python benchmarks/bench_train_breakdown.py --data /path/to/set/data --out /tmp/breakdown
    python benchmarks/bench_train_breakdown.py --data ... --out ... --epochs 6 --flush_denormals --test
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch's OpenMP runtime loads, so before torch

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402


def tspm_config(data: Path, out: Path, tiny: bool, settings: dict):
    """The TSPMConfig the main job's TSPM stage trains with on ``data``, with its outputs under ``out``."""
    import json

    from avqa import registry
    from avqa.tspm.stages import TSPMStages
    seconds = json.loads((data / "feats" / "vggish.json").read_text())["seconds"]
    job = SimpleNamespace(data=data, out=out, feats=data / "feats", seconds=seconds, tiny=tiny,
                          args=SimpleNamespace(device=settings.pop("device", None)))
    return TSPMStages(job, registry.entry("tspm").recipes["tiny" if tiny else "demo"]["tspm"]).config(**settings)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True,
                   help="the set's data/ folder with TSPM's features (python -m avqa.pipeline --tspm made them); "
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
    p.add_argument("--flush_denormals", action="store_true",
                   help="train with TSPM's --flush_denormals (subnormal floats flushed to zero in every thread; "
                        "avqa.engine.denormals): without it, the slowdown on Intel CPUs this benchmark shows")
    p.add_argument("--test", action="store_true",
                   help="then test the best checkpoint on the test split, writing <out>/tspm_test.json (the report "
                        "whose predictions two code versions should share)")
    a = p.parse_args()
    if not (a.data / "feats" / "vggish.json").is_file():
        print(f"--data {a.data}: no feats/vggish.json there: point --data at the data/ folder of a set the main "
              f"job made with --tspm", file=sys.stderr)
        return 1
    import torch

    from avqa.engine.breakdown import record, table
    from avqa.machine import cpu_details, describe_machine
    from avqa.tspm.run import run_config
    settings = {"overwrite": True, "quiet": True}
    cfg = tspm_config(a.data.resolve(), a.out.resolve(), a.tiny, settings)
    if a.epochs is not None:
        cfg.epochs = a.epochs
    if not a.tensorboard:
        cfg.tensorboard_dir = ""
    print(f"machine: {describe_machine()}; {cpu_details()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    cfg.flush_denormals = a.flush_denormals
    print(f"subnormal floats: {'flushed to zero' if a.flush_denormals else 'kept'}", flush=True)
    with record() as b:
        code = run_config(cfg)
    print(f"load average after: {os.getloadavg()}")
    print(f"\nTSPM training, batch {cfg.batch_size}, {cfg.epochs} epochs: wall seconds per phase of each epoch")
    print(table(b))
    if a.save_state is not None:
        state = torch.load(Path(cfg.model_save_dir) / f"{cfg.checkpoint}_last.pt", map_location="cpu", weights_only=False)
        torch.save(state["state_dict"], a.save_state)
    if code == 0 and a.test:
        code = run_config(tspm_config(a.data.resolve(), a.out.resolve(), a.tiny,
                                      {"mode": "test", "quiet": True, "flush_denormals": a.flush_denormals,
                                       "results": str(a.out.resolve() / "tspm_test.json")}))
    return code


if __name__ == "__main__":
    sys.exit(main())
