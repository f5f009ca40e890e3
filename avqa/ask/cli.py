"""Ask AVST a question about one video: ``python -m avqa.ask VIDEO "QUESTION"``.

Without this, one question about one's own video takes five scripts over folders and an
annotation file written by hand. Here it all happens in memory for one clip, through the code
those scripts run, so the answer is the one ``main_avst.py --mode test`` gives on the same
question:
- the sound and the sampled frames are decoded and turned into VGGish and 14x14 features by the
  extractors' own loaders and backbone runner (avqa.features), with the weights the
  checkpoint's features were made with: its record (``<checkpoint>_recorded.json``, or the
  metadata of its training run's feature folders) names them by sha256, or the seeded init;
  official weights given with --vggish_weights / --res18_weights take their place;
- the question is read with the checkpoint's vocabulary (an original-format checkpoint takes it
  from --label_train, as main_avst.py does) and matched to one of the 33 templates for its type;
- the checkpoint is loaded by avqa.checkpoint.load_trained_state, which refuses another model or
  vocabulary; --sheet draws main_avst_vis.py's sheet (avqa.visualize.avst_sheet).

It prints the answer, the top 5 with their probabilities, the question's type and its temporal
attention over the sampled seconds, for sound and for vision; --json writes the same for
programs. --template lists the templates and the words the checkpoint knows. Bad input is one
sentence: exit status 2 for a question the model cannot read (a word it does not know) or a flag
missing, 1 for a file (a video without sound, a file that is not a video, a checkpoint of another
model, an output path that is a folder), as everywhere in this project.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..utils import EXIT_CODES, at_least, atomic_write_text, check_writable, user_errors
from ..visualize import save_png
from .answerer import load_answerer
from .errors import AskError
from .features import check_video
from .question import read_question, template_listing
from .trained import DEFAULT_MODEL_DIR, checkpoint_path


def format_report(r: dict, details: Callable[[dict], list[str]] | None = None) -> str:
    """The answer as the command line prints it (``r``: the reply's ``as_dict()``): how the question was read
    (where it differs from what was typed), the answer and the top ones, then the lines its family's answerer
    adds (``details``; AVST's: the question's type and template, and where it looked)."""
    lines = []
    if "read_as" in r and r["read_as"] != " ".join(r["question"].split()).rstrip("?？").rstrip() + "?":
        lines.append(f"read as: {r['read_as']}")
    lines.append(f"answer: {r['answer']}   (probability {r['probability']:.4f})")
    if "top" in r:
        lines.append(f"top {len(r['top'])}:")
        lines += [f"  {t['answer']:<16} {t['probability']:.4f}" for t in r["top"]]
    return "\n".join(lines + (details(r) if details else []))


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m avqa.ask", description=__doc__,
        epilog="example: python -m avqa.ask data/videos/90000008.mp4 \"Where is the last sounding instrument?\" "
               "--sheet sheet.png\n\n" + EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", help="the video (with sound) to ask about")
    p.add_argument("question", nargs="?", help="the question, in the words of one of the templates (--template)")
    p.add_argument("--template", action="store_true",
                   help="list the 33 templates, their placeholders and the words the checkpoint knows, and stop")
    p.add_argument("--model_save_dir", default=DEFAULT_MODEL_DIR,
                   help=f"folder of the checkpoint (default: {DEFAULT_MODEL_DIR}, the bundled one's)")
    p.add_argument("--checkpoint", default="avst",
                   help="<model_save_dir>/<checkpoint>.pt, or a path to a .pt file (default: avst)")
    p.add_argument("--label_train", default=None,
                   help="train annotations to build the vocabularies from: needed for original-format checkpoints "
                        "(ours carry theirs, and are checked against it when given)")
    p.add_argument("--vggish_weights", default=None,
                   help="VGGish weights (official vggish_model.ckpt or vggish-10086976.pth); default: those the "
                        "checkpoint's features were made with")
    p.add_argument("--res18_weights", default=None,
                   help="ResNet-18 weights (official resnet18-5c106cde.pth); default: those the checkpoint's "
                        "features were made with")
    p.add_argument("--seconds", type=at_least(1), default=None,
                   help="T, the clip length the model reads (default: the checkpoint's features' T; 60 for original "
                        "checkpoints)")
    p.add_argument("--sheet", default=None, metavar="PNG", help="also draw main_avst_vis.py's attention sheet here")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the answer as JSON here ('-': stdout, "
                                                                 "instead of the text)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    return p


def check_outputs(args: argparse.Namespace) -> None:
    """--sheet and --json, before any work: a bad path is said in the words the user typed."""
    for flag in ("sheet", "json"):
        out = getattr(args, flag)
        if out and out != "-":
            if Path(out).is_dir():
                raise AskError(f"--{flag} {out} is a folder: give a file name, e.g. --{flag} "
                               f"{Path(out) / ('sheet.png' if flag == 'sheet' else 'answer.json')}")
            check_writable(Path(out).resolve().parent, f"--{flag}")


def answerer_of(args: argparse.Namespace):
    """The answerer of the family whose model --checkpoint holds (avqa.ask.load_answerer), its backbones not built
    yet: a question it cannot read or a bad video is said before that work."""
    return load_answerer(checkpoint_path(args.model_save_dir, args.checkpoint), args.label_train, prepare=False,
                         vggish_weights=args.vggish_weights, res18_weights=args.res18_weights, seconds=args.seconds,
                         device=args.device)


def ask(args: argparse.Namespace, answerer=None) -> dict:
    """Answer ``args.question`` about ``args.video`` with ``answerer`` (default: ``answerer_of(args)``): the reply's
    ``as_dict()``; notes go to stderr, the sheet to --sheet (refused for a family whose answerer draws none)."""
    answerer = answerer or answerer_of(args)
    read_question(args.question, answerer.vocab)  # a question the model cannot read stops here, before any work
    check_video(Path(args.video))
    check_outputs(args)
    if args.sheet and not hasattr(answerer, "sheet"):
        raise AskError(f"--sheet: the model of {checkpoint_path(args.model_save_dir, args.checkpoint)} draws no "
                       f"attention sheet; leave --sheet out")
    result = answerer.answer(args.video, args.question)
    reply = result.as_dict()
    for n in reply.get("notes", []):
        print(f"note: {n}", file=sys.stderr)
    if args.sheet:
        save_png(answerer.sheet(result), Path(args.sheet))
    return reply


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        if args.template:
            print(template_listing(answerer_of(args).vocab))
            return 0
        if not args.video or not args.question:
            p.error("give a VIDEO and a QUESTION (or --template to list the questions the model can read)")
        answerer = answerer_of(args)
        result = ask(args, answerer)
    except AskError as e:
        print(e, file=sys.stderr)
        return e.code
    text = json.dumps(result, indent=1)
    if args.json == "-":
        print(text)
    else:
        print(format_report(result, getattr(answerer, "details", None)))
        if args.json:
            atomic_write_text(args.json, text + "\n")
            print(f"json: {args.json}")
    if args.sheet:
        print(f"sheet: {args.sheet}")
    return 0
