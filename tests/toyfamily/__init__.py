"""A model family the library does not know, in a package of its own: its model, its script, its stages of
the main job, its ladder rungs and its answerer. ``avqa.registry.register("toy", "toyfamily:FAMILY")``
is all a test writes to have the library train, test, stage, ladder, ask and score it.

The model reads the VGGish features (the mean over the clip's seconds) and the question (a bag of
words) and answers through one linear layer; it is trained with SGD and a constant rate, and its
named losses are the answer's cross-entropy and a second, logged term (the logits' spread)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

from avqa import checkpoint
from avqa.annotations import Vocab
from avqa.ask.question import read_question
from avqa.ladder_families import LadderFamily
from avqa.recipes import Recipe
from avqa.registry import FamilyEntry
from avqa.stage import Stage, finished, run_task, tested
from avqa.tasks import qa
from avqa.tasks.cli import build_parser
from avqa.tasks.config import RunConfig
from avqa.utils import metadata_path, user_errors

RECIPE = Recipe(epochs=2, lr=0.5, batch_size=16)
SIZES = {"toy_small": 4, "toy": 32}   # the rungs: the hidden width of each model


class ToyQA(nn.Module):
    """Mean VGGish feature and bag of question words -> hidden -> answer."""

    uses_audio, uses_visual, uses_negatives, unused_keys = True, False, False, ()
    hidden = 32

    def __init__(self, vocab_size: int = 10, num_answers: int = 4):
        super().__init__()
        self.words = nn.EmbeddingBag(vocab_size, self.hidden, mode="mean")
        self.audio = nn.Linear(128, self.hidden)
        self.out = nn.Linear(self.hidden, num_answers)

    def forward(self, audio, visual, negatives, question):
        return self.out(torch.tanh(self.words(question) + self.audio(audio.float().mean(1)))), None, None


class ToySmall(ToyQA):
    hidden = 4


def toy_loss(model, batch, match_weight):
    logits = model(batch["audio"], None, None, batch["question"])[0].float()
    answer = F.cross_entropy(logits, batch["label"])
    spread = logits.std(1).mean()
    return {"loss": answer + 0.0 * spread, "answer": answer, "spread": spread}


def sgd(model, cfg):
    return torch.optim.SGD(model.parameters(), lr=cfg.lr)


def constant(optimizer, cfg):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


MODELS = {name: qa.Family(cls, loss=toy_loss, parts=("answer", "spread"), reported=("answer", "spread"),
                          optimizer=sgd, scheduler=constant)
          for name, cls in (("toy_small", ToySmall), ("toy", ToyQA))}


# ----------------------------------------------------------------------------- its script


def config(argv) -> RunConfig:
    """The toy script's flags: the baseline script's (its data, recipe and run flags)."""
    args = vars(build_parser("baseline", "the toy family").parse_args(argv))
    return RunConfig.from_flags({**args, "model": "AVQA_Fusion_Net"}, "baseline")


@user_errors
def main(argv=None) -> int:
    """Train or test the toy model named by --checkpoint (toy or toy_small)."""
    cfg = config(argv)
    return qa.run(cfg, cfg.checkpoint)


# ----------------------------------------------------------------------------- its stages of the main job


def job_flags(job, *more) -> list[str]:
    d = job.data / "json"
    return ["--audio_dir", str(job.feats / "vggish"), "--label_train", str(d / "avqa-train.json"),
            "--label_val", str(d / "avqa-val.json"), "--label_test", str(d / "avqa-test.json"),
            "--model_save_dir", str(job.out / "toy"), "--checkpoint", "toy", "--tensorboard_dir", "", "--quiet", *more]


def stages(job) -> list[Stage]:
    o = job.out
    ckpt = checkpoint.trained_path(o / "toy", "toy")
    return [Stage("toy", "the toy family's training", ["vggish"],
                  lambda: run_task(main, job_flags(job, *RECIPE.flags(), "--resume")),
                  finished(o / "toy", "toy", 2, "toy"), [o / "toy"], {"flags": RECIPE.flags()}, resumes=True),
            Stage("test_toy", "the toy family on the test split", ["toy"],
                  lambda: run_task(main, job_flags(job, "--mode", "test", "--results", str(o / "toy_test.json"))),
                  tested(o / "toy_test.json", ckpt), [o / "toy_test.json"])]


def summary(out: Path, tables: dict) -> dict:
    if "toy" in tables:
        print(f"\ntoy: overall {tables['toy']['Overall']['accuracy']:.2f}%")
    return {"toy_overall": tables.get("toy", {}).get("Overall", {}).get("accuracy")}


# ----------------------------------------------------------------------------- its ladder


class ToyLadder(LadderFamily):
    name, title, out, heading = "toy", "Toy", "outputs/ladder_toy", "the toy family's rungs"
    rungs = {"toy_small": "small", "toy": "full"}
    flags = ()
    choice = "the toy family"

    def doc(self, rung):
        return f"the toy model, {SIZES[rung]} wide\nmean VGGish + bag of words"

    def reads(self, args, rung):
        folder = str(Path(args.data) / "feats" / "vggish")
        return [args.label_train, args.label_val, args.label_test, folder, metadata_path(folder)]

    def config(self, args, rung, **settings):
        flags = ["--audio_dir", str(Path(args.data) / "feats" / "vggish"), "--label_train", args.label_train,
                 "--label_val", args.label_val, "--label_test", args.label_test,
                 "--model_save_dir", str(Path(args.out) / rung), "--checkpoint", rung, "--tensorboard_dir", "",
                 "--quiet"]
        return RunConfig(**{**vars(config(flags)), **settings})

    def run(self, cfg):
        return qa.run(cfg, cfg.checkpoint)

    def header(self, args):
        return {"family": self.name, "recipe": self.recipe_flags(args)}

    def orderings(self, tables):
        return {}


# ----------------------------------------------------------------------------- how ask answers with it


class ToyAnswerer:
    """Answers from the question alone (the clip's sound read as silence): what the toy needs to be asked. Its
    replies have ``answer``, ``probability`` and ``as_dict()``; ``details`` is what avqa.ask prints after the answer;
    it draws no sheet."""

    def __init__(self, path: Path):
        obj = checkpoint.load_dict(path)
        self.vocab = Vocab(tuple(obj["question_vocab"]), tuple(obj["answer_vocab"]))
        self.model = MODELS[obj["model"]].cls(len(self.vocab.questions), len(self.vocab.answers))
        checkpoint.load_trained_state(path, obj["model"], self.model, self.vocab, obj)

    @torch.no_grad()
    def answer(self, video, question: str):
        q = torch.tensor([self.vocab.word_ids(read_question(question, self.vocab))])
        probs = torch.softmax(self.model.eval()(torch.zeros(1, 1, 128), None, None, q)[0], -1)[0]
        best = int(probs.argmax())
        reply = {"video": str(video), "question": question, "answer": self.vocab.answers[best],
                 "probability": float(probs[best])}
        return SimpleNamespace(**reply, as_dict=lambda: reply)

    @staticmethod
    def details(r: dict) -> list[str]:
        """What python -m avqa.ask prints after the answer: the toy's own line."""
        return ["(the toy answers from the question alone)"]


def answerer(path, label_train=None, **options):
    return ToyAnswerer(Path(path))


FAMILY = FamilyEntry(name="toy", title="Toy", models=MODELS, stages=stages, tables=("toy",), summary=summary,
                     ladder=ToyLadder(), answerer=answerer, answers=("toy", "toy_small"),
                     recipes={"demo": {"toy": RECIPE}, "tiny": {"toy": RECIPE}}, help="the toy family of tests/toyfamily")
