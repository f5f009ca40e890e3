"""What the ladder (python -m avqa.ladder) asks of a model family: its rungs, bottom to top with the full
model last, how a rung's run is configured and run, which files it reads, which orderings are checked,
its own flags, and the paper's figures where this project knows them. Each family's ladder lives in its
package (its entry in avqa.registry names it); ``ladder_families`` lists the registered ones."""
from __future__ import annotations

import argparse

from . import registry
from .tasks.config import RunConfig


class LadderFamily:
    """What the ladder knows of one model family: its rungs (bottom to top, the full model last), how a
    rung's run is configured and run, what it reads, and the paper's figures (None: not known)."""

    name: str
    title: str
    heading: str                   # what the table and the plot are titled
    rungs: dict[str, str]          # rung -> label
    out: str                       # the default --out
    flags: tuple[str, ...]         # the ladder flags only this family has
    paper_overall: dict[str, float] | None = None
    paper_top: dict[str, float] | None = None
    paper_note: str = ""           # the table's last line
    paper_source: str = ""
    choice: str = ""               # what --family's help says of it

    @property
    def recipe(self) -> dict:
        """The recipe (epochs, lr, lr_step, batch_size) the ladder trains with by default when this family is the
        default one: the main job's demo recipe of its full model, from the family's registry entry."""
        return registry.entry(self.name).recipes["demo"][self.top].settings()

    @property
    def top(self) -> str:
        return list(self.rungs)[-1]

    def doc(self, rung: str) -> str:
        """The two lines that say what a rung computes."""
        raise NotImplementedError

    def defaults(self, args: argparse.Namespace) -> None:
        """Fill the family's flags left unset (their defaults depend on --data)."""

    def settings(self, args: argparse.Namespace, rung: str) -> dict:
        """The settings a rung's result depends on besides the files it reads (its stamp's config)."""
        return {"rung": rung, "recipe": self.recipe_flags(args), "amp": args.amp}

    def recipe_flags(self, args: argparse.Namespace) -> list[str]:
        return ["--epochs", str(args.epochs), "--lr", str(args.lr), "--lr_step", str(args.lr_step),
                "--batch-size", str(args.batch_size), "--seed", str(args.seed)]

    def training(self, args: argparse.Namespace, rung: str) -> dict:
        """The run-config fields only training takes."""
        return dict(epochs=args.epochs, lr=args.lr, lr_step=args.lr_step, batch_size=args.batch_size, seed=args.seed)

    def reads(self, args: argparse.Namespace, rung: str) -> list[str]:
        """Every file and folder whose change retrains a rung."""
        raise NotImplementedError

    def config(self, args: argparse.Namespace, rung: str, **settings) -> RunConfig:
        """The config of a rung's training or test: the family's script defaults, the ladder's files, ``settings``."""
        raise NotImplementedError

    def run(self, cfg: RunConfig) -> int:
        raise NotImplementedError

    def report_model(self, rung: str) -> str:
        """The model a rung's test report names."""
        return rung

    def header(self, args: argparse.Namespace) -> dict:
        """ladder.json's record of the family's inputs and recipe."""
        raise NotImplementedError

    def orderings(self, tables: dict[str, dict]) -> dict[str, dict]:
        raise NotImplementedError

    def check(self, args: argparse.Namespace) -> None:
        """Stop, naming the flag and the fix, when an input the rungs need is missing."""

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        """The ladder flags only this family has (``flags``), in an argument group of their own."""


def ladder_families() -> dict[str, LadderFamily]:
    """The registered families that have ablation rungs, by name, in registration order."""
    return {e.name: e.ladder for e in registry.entries() if e.ladder is not None}
