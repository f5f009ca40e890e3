"""The whole pipeline on the embedded synthetic default, in one command:

    python -m avqa.pipeline            # generate, extract (VGGish and 14x14), pre-train, train,
                                       # test, score, visualise
    python -m avqa.pipeline --tiny     # a handful of short clips and one epoch (what CI runs); also
                                       # the pooled ResNet-18 and R(2+1)D features no model here reads
    python -m avqa.pipeline --tspm     # then TSPM: its features, training, test and selection score

Every stage checks its own outputs (not just that they exist), the runs of the stages it depends
on and every file it reads (by size and modification time); a finished stage is skipped, deleting a
stage's outputs redoes that stage and the ones after it, and a file changed in place redoes the
stages that read it (the run says which files changed). One main job at a time writes into --data
and --out: a second is refused, naming the first one's process id. Outputs: the dataset and features under --data (the folders every script reads
by default), models, reports and sheets under --out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import registry, stamps
from .utils import EXIT_CODES, atomic_write_text, fingerprint, run_lock, user_errors

if TYPE_CHECKING:
    from .stage import Stage

INTERRUPTED = "interrupted last time: resuming"
TSPM_SPELLING = "avst,tspm"  # what --tspm stands for: --family avst,tspm
READS_CHANGED = "the files it reads changed"


class Pipeline:
    """Runs the main job's stages (avqa.job) in order: a stage whose stamp holds and whose outputs pass
    its check is skipped; an interrupted one resumes; any other runs again after its old outputs go."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.data = Path(args.data)
        self.out = Path(args.out)
        self.stamp_dir = self.out / ".stages"
        self.tiny = args.tiny
        self.stages: dict[str, Stage] = {}
        self.report: list[dict] = []
        self.replaced: dict[str, dict | None] = {}  # the stamp of each stage being redone, from its last run
        self.families = [registry.entry(name) for name in args.family]
        self._define()

    # ------------------------------------------------------------------ stage bookkeeping

    def _stamp_path(self, name: str) -> Path:
        return self.stamp_dir / f"{name}.json"

    def _stamp(self, name: str) -> dict | None:
        return stamps.read(self._stamp_path(name))

    def _upstream(self, stage: Stage) -> dict:
        return {n: (self._stamp(n) or {}).get("run_id") for n in stage.needs}

    def _reads(self, stage: Stage) -> dict:
        """The fingerprint of what a stage reads: the outputs of every stage it depends on, however far back."""
        seen, todo = set(), list(stage.needs)
        while todo:
            name = todo.pop()
            if name not in seen and name in self.stages:
                seen.add(name)
                todo += self.stages[name].needs
        return fingerprint(p for name in self.stages if name in seen for p in self.stages[name].outputs)

    def _why_stale(self, stage: Stage) -> tuple[stamps.Staleness | None, str | None]:
        """Why the stage runs again, as a value (None: its stamp holds) and in words (None: it is complete)."""
        stale = stamps.staleness(self._stamp(stage.name), stage.config, lambda: self._reads(stage),
                                 upstream=self._upstream(stage), older_without_reads=True)
        if stale is None:
            return None, stage.check()
        words = {stamps.NOT_RUN: "not run yet", stamps.SETTINGS: "settings changed",
                 stamps.UPSTREAM: "an earlier stage was redone", stamps.INTERRUPTED: INTERRUPTED}
        return stale, words.get(stale.reason) or f"{READS_CHANGED} ({'; '.join(stale.changed)})"

    def _clear(self, stage: Stage) -> None:
        """Outputs made from other inputs or settings (or of unknown origin) are removed before a stage reruns."""
        for p in stage.outputs:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def run(self) -> int:
        t_all = time.time()
        for stage in self.stages.values():
            stale, why = self._why_stale(stage)
            t0 = time.time()
            if why is None:
                status = "skipped (complete)"
                print(f"[{stage.name}] complete, skipped", flush=True)
            else:
                print(f"\n== {stage.name}: {stage.what} ({why}) ==", flush=True)
                self.replaced[stage.name] = self._stamp(stage.name)
                # fresh: the old outputs go first. A training stage keeps only an interrupted run's; the others
                # keep an interrupted run's and those that merely failed their check
                fresh = (stale is None or stale.fresh) if stage.resumes else stale is not None and stale.fresh
                if fresh and not stage.keep_outputs:
                    self._clear(stage)
                reads = self._reads(stage)  # before the stage runs: a file changed meanwhile redoes it next time
                # marked as started: a run killed in this stage resumes it next time, keeping what it finished
                stamps.write(self._stamp_path(stage.name), config=stage.config, upstream=self._upstream(stage),
                             reads=reads, run_id=None, complete=False)
                try:
                    stage.run()
                except SystemExit as e:
                    if e.code not in (0, None):
                        print(f"[{stage.name}] failed: {e}", file=sys.stderr)
                        return 1
                problem = stage.check()
                if problem:
                    print(f"[{stage.name}] produced invalid outputs: {problem}", file=sys.stderr)
                    return 1
                run_id = hashlib.sha1(f"{stage.name}{time.time()}".encode()).hexdigest()[:12]
                stamps.write(self._stamp_path(stage.name), config=stage.config, upstream=self._upstream(stage),
                             reads=reads, run_id=run_id, complete=True)
                status = "ran"
            self.report.append({"stage": stage.name, "status": status, "seconds": round(time.time() - t0, 1),
                                "outputs": [str(p) for p in stage.outputs]})
        self._summary(time.time() - t_all)
        return 0

    # ------------------------------------------------------------------ the stages

    def _define(self) -> None:
        from .job import MainJob
        job = MainJob(self.args, self.replaced)
        stages = job.stages()
        for family in self.families:
            stages += family.stages(job)
        self.stages = {s.name: s for s in stages}

    # ------------------------------------------------------------------ the end

    def _summary(self, total: float) -> None:
        from .machine import describe_machine
        o = self.out
        print("\n" + "=" * 78)
        tables = {}
        for model in (m for family in self.families for m in family.tables):
            p = o / f"{model}_test.json"
            if p.exists():
                tables[model] = json.loads(p.read_text())["table"]
        if tables:
            print("test accuracy per question type (synthetic test split):")
            print(f"  {'':<20}" + "".join(f"{m:>16}" for m in tables))
            for row in next(iter(tables.values())):
                print(f"  {row:<20}" + "".join(
                    f"{tables[m][row]['accuracy']:>15.2f}%" if tables[m][row]["accuracy"] is not None else f"{'-':>16}"
                    for m in tables))
        extra = {}
        for family in self.families:
            if family.summary is not None:
                extra.update(family.summary(o, tables))
        precision = "bfloat16" if self.args.bf16 else "float32"
        print(f"\nstages, on {describe_machine()} (VGGish and 14x14 features in {precision}):")
        for r in self.report:
            print(f"  {r['stage']:<20} {r['status']:<20} {r['seconds']:>7.1f} s   {', '.join(r['outputs'])}")
        print(f"  {'total':<20} {'':<20} {total:>7.1f} s")
        atomic_write_text(o / "summary.json", json.dumps({"machine": describe_machine(), "feature_precision": precision,
                                                          "stages": self.report,
                                                          "seconds": round(total, 1), "tables": tables, **extra},
                                                         indent=1))
        print(f"\nsummary: {o / 'summary.json'}; TensorBoard: tensorboard --logdir {o / 'runs'}")


def family_list(text: str) -> list[str]:
    """--family's value: registered family names, comma-separated, in the registry's order."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry.REGISTERED]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown family {', '.join(unknown) or '(none given)'}; choose from "
                                         f"{', '.join(registry.REGISTERED)}")
    return [n for n in registry.REGISTERED if n in names]


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data", help="dataset and features (default: data, where every script looks)")
    p.add_argument("--out", default="outputs", help="models, reports and sheets (default: outputs)")
    p.add_argument("--tiny", action="store_true", help="16 clips of 4 s and one epoch: a quick end-to-end check")
    p.add_argument("--num_clips", type=int, default=None, help="clips to generate (default: 480, or 16 with --tiny)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")
    p.add_argument("--sheets", type=int, default=6, help="attention sheets to write")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="what the VGGish and 14x14 features are computed in (trainings stay float32): auto "
                        "(default) is bfloat16 where the device computes it natively (a CPU with AVX-512 bfloat16 "
                        "or AMX, a GPU; faster) and float32 elsewhere; the two give slightly other "
                        "features and figures (docs/speed.md, bfloat16)")
    p.add_argument("--bf16", dest="precision", action="store_const", const="bfloat16",
                   help="the same as --precision bfloat16")
    p.add_argument("--family", type=family_list, default=None, metavar="NAMES",
                   help="the model families to run after the set's own stages, comma-separated, of "
                        + "; ".join(f"{e.name} ({e.help})" for e in registry.entries())
                        + " (default: " + ",".join(e.name for e in registry.entries() if e.in_main_job)
                        + "; --tspm: avst,tspm)")
    p.add_argument("--tspm", action="store_true",
                   help="afterwards, TSPM on the same set (docs/tspm.md, On the embedded default): its CLIP frame, "
                        "question and QA-prompt features and ToMe tokens from the synthetic-world stand-ins in "
                        "feat_script/weights/, under DATA/feats in the release's layout; TSPM trained, tested on the "
                        "test split beside AVST and question-only, and its kept seconds scored against the ground "
                        "truth")
    p.add_argument("--bundle", action="store_true",
                   help="maintainers: afterwards, ship the AVST checkpoint to net_grd_avst/avst_models/")
    args = p.parse_args(argv)
    if args.tspm and args.family is not None:
        p.error("--tspm is a spelling of --family avst,tspm: give one of the two")
    args.family = args.family or (family_list(TSPM_SPELLING) if args.tspm else
                                  [e.name for e in registry.entries() if e.in_main_job])
    if args.bundle and (args.tiny or args.num_clips):
        p.error("--bundle ships the checkpoint of the default set only")
    from .machine import native_bf16
    from .utils import pick_device
    device = pick_device(args.device)
    native = native_bf16(device)
    if args.precision == "bfloat16" and not native:
        p.error(f"--precision bfloat16: this {device} has no bfloat16 instructions (it would be emulated, slower "
                f"than float32); use --precision float32 or auto")
    args.bf16 = args.precision == "bfloat16" or (args.precision == "auto" and native)
    with run_lock(args.data, "pipeline", "--data"), run_lock(args.out, "pipeline", "--out"):
        code = Pipeline(args).run()
        if code == 0 and args.bundle:
            from .maintainer import bundle
            bundle(Path(args.data), Path(args.out))
    return code


if __name__ == "__main__":
    sys.exit(main())
