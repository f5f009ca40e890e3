"""The values of a QA-TIGER release config file (``configs/qa-tiger/vitl14.py``), read without running it.

The file assigns ``config = dict(...)`` of literals and nested ``dict(...)`` calls. Its syntax tree is
read: each ``dict(key=value)`` becomes a dictionary and every other value must be a Python literal
(``ast.literal_eval``), so nothing in the file is executed. ``flag_defaults`` maps the values onto the
QA-TIGER scripts' flags.
"""
from __future__ import annotations

import ast
from pathlib import Path


def _value(node: ast.AST):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _value(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {ast.literal_eval(k): _value(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def read_config(path: str | Path) -> dict:
    """The ``config`` dictionary the file assigns; a SystemExit naming --config for anything else."""
    fix = "give the release's configs/qa-tiger/<name>.py (a 'config = dict(...)' of literals)"
    try:
        tree = ast.parse(Path(path).read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as e:
        raise SystemExit(f"--config {path} cannot be read as Python source ({e}): {fix}") from None
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == "config"):
            try:
                value = _value(stmt.value)
            except (ValueError, TypeError, SyntaxError) as e:
                raise SystemExit(f"--config {path}: its config holds a value that is not a literal ({e}): "
                                 f"{fix}") from None
            if isinstance(value, dict):
                return value
    raise SystemExit(f"--config {path} assigns no 'config' dictionary: {fix}")


def _joined(root: str | None, sub: str | None) -> str | None:
    return None if sub is None else (Path(root or ".") / sub).as_posix()


def flag_defaults(cfg: dict, path: str | Path) -> dict:
    """The flags the release config sets: recipe, model sizes and (joined to its data root) the files."""
    data, hyper = cfg.get("data", {}), cfg.get("hyper_params", {})
    model, optim, sched = hyper.get("model", {}), hyper.get("optim", {}), hyper.get("sched", {})
    if sched.get("name", "StepLR") != "StepLR":
        raise SystemExit(f"--config {path} asks for the scheduler {sched['name']!r}; the QA-TIGER scripts train "
                         f"with StepLR only: give a StepLR config")
    if optim.get("encoder_lr") is not None:
        raise SystemExit(f"--config {path} sets encoder_lr; the text encoder here is frozen: set it to None")
    if optim.get("weight_decay", 0):
        raise SystemExit(f"--config {path} sets weight_decay {optim['weight_decay']}; the QA-TIGER scripts train "
                         f"without weight decay: set it to 0")
    root = data.get("root")
    out = {"seed": cfg.get("seed"), "epochs": cfg.get("epochs"), "batch_size": data.get("batch_size"),
           "eval_batch_size": data.get("eval_batch_size"), "lr": optim.get("lr"),
           "betas": list(optim["betas"]) if optim.get("betas") else None, "lr_step": sched.get("step_size"),
           "lr_gamma": sched.get("gamma"),
           **{k: model.get(k) for k in ("d_model", "video_dim", "patch_dim", "topK", "num_experts")},
           **{flag: _joined(root, data.get(key)) for flag, key in
              (("audio_feat", "audio_feat"), ("video_feat", "video_feat"), ("patch_feat", "patch_feat"),
               ("label_train", "train_annot"), ("label_val", "valid_annot"), ("label_test", "test_annot"),
               ("answer2idx", "ans_quelen"))}}
    return {k: v for k, v in out.items() if v is not None}
