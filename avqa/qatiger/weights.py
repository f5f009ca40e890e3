"""QA-TIGER's weights: the frozen CLIP text tower from OpenAI's file (or the synthetic stand-in), and the
release's ``best.pt`` read with every missing and unexpected key named.

The release saves ``model.state_dict()`` of its network: a plain dictionary of tensors, its keys
without ``module.``, the frozen text encoder under ``quest_encoder.`` in OpenAI's CLIP key layout.
A file without the ``quest_encoder.`` keys takes them from --clip_weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .. import checkpoint
from ..features.clip import openai_state_dict
from ..utils import relative_hint

PREFIX = "quest_encoder."
TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection",
             "logit_scale")


def text_settings(state: dict[str, torch.Tensor], prefix: str = "") -> dict:
    """The TextEncoder arguments of a text tower's tensors (OpenAI's rule: one head per 64 channels)."""
    width = state[prefix + "token_embedding.weight"].shape[1]
    blocks = {k[len(prefix):].split(".")[2] for k in state if k.startswith(prefix + "transformer.resblocks.")}
    return {"width": width, "layers": len(blocks), "heads": max(1, width // 64),
            "embed_dim": state[prefix + "text_projection"].shape[1],
            "vocab_size": state[prefix + "token_embedding.weight"].shape[0],
            "context_length": state[prefix + "positional_embedding"].shape[0]}


def clip_text_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The text tower's tensors of an OpenAI CLIP file; a SystemExit names --clip_weights and the fix."""
    if not path or not Path(path).is_file():
        raise SystemExit(f"--clip_weights {path} not found{relative_hint(path or '.')}: give OpenAI's "
                         f"ViT-L-14-336px.pt (the release's text encoder) or feat_script/weights/clip_synthetic.pt "
                         f"(the synthetic world's stand-in)")
    try:
        sd = openai_state_dict(path)
        text = {k: v.float() for k, v in sd.items() if k.startswith(TEXT_KEYS)}
        text_settings(text)
    except (ValueError, KeyError, IndexError) as e:
        raise SystemExit(f"--clip_weights {path}: {e}: give OpenAI's ViT-L-14-336px.pt or a CLIP state_dict "
                         f"in its key layout") from None
    return text


def starting_text(cfg) -> dict[str, torch.Tensor]:
    """The text tower a run's model is built with (keys without the prefix): in test mode the
    checkpoint's own where it holds one, otherwise --clip_weights'."""
    if cfg.mode == "test":
        path = checkpoint.trained_path(Path(cfg.model_save_dir), cfg.checkpoint, cfg.script)
        try:
            obj = checkpoint.load_file(path) if path.is_file() else None
        except ValueError:
            obj = None  # the loader says what it is
        state = obj.get("state_dict") if checkpoint.is_ours(obj) else obj if checkpoint.is_original(obj) else None
        if isinstance(state, dict):
            state = {k.removeprefix("module."): v for k, v in state.items()}
            text = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
            if text:
                return text
    return clip_text_state(cfg.clip_weights)


def _mismatch(path: Path, missing: list[str], unexpected: list[str], cfg) -> SystemExit:
    return SystemExit(f"{path} is not a QA-TIGER best.pt of these settings: missing keys "
                      f"({len(missing)}): {', '.join(missing) or 'none'}; unexpected keys ({len(unexpected)}): "
                      f"{', '.join(unexpected) or 'none'}. Give the best.pt of QA-TIGER's release or a checkpoint "
                      f"of net_qatiger/main_train.py (--model_save_dir, --checkpoint), tested with the "
                      f"--num_experts ({cfg.num_experts}) it was trained with")


def release_hook(cfg, path: Path) -> Callable[[object, torch.nn.Module], dict[str, torch.Tensor] | None]:
    """The load hook of a release-format file (``hook(obj, model)``: its state for ``model``, None for an object
    that is no plain state_dict), for the run ``cfg`` testing ``path``.

    The state is checked strictly: every missing and unexpected key, and every tensor of another shape, is
    named in one SystemExit; absent text-encoder keys come from --clip_weights; the file's classes follow
    the release's answer2idx.json, so --answer2idx is required."""
    def hook(obj: object, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
        if not checkpoint.is_original(obj):
            return None
        if not cfg.answer2idx:
            raise SystemExit(f"{path} is a release-format state_dict, whose classes follow the release's "
                             f"answer2idx.json: pass --answer2idx data/annots/<set>/answer2idx.json")
        return checked_state(cfg, path, model, {k.removeprefix("module."): v for k, v in obj.items()})
    return hook


def checked_state(cfg, path: Path, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` completed from --clip_weights where it holds no text encoder, after checking it fits ``model``."""
    from_clip = not any(k.startswith(PREFIX) for k in state)
    if from_clip:
        state = {**state, **{PREFIX + k: v for k, v in clip_text_state(cfg.clip_weights).items()}}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise _mismatch(path, missing, unexpected, cfg)
    wrong = [k for k in expected if state[k].shape != expected[k].shape]
    if from_clip and any(k.startswith(("words_proj.", "quest_proj.")) for k in wrong):
        raise SystemExit(f"--clip_weights {cfg.clip_weights} holds a text encoder of width "
                         f"{state[PREFIX + 'token_embedding.weight'].shape[1]} and output "
                         f"{state[PREFIX + 'text_projection'].shape[1]}, but {path} reads words of width "
                         f"{state['words_proj.proj.weight'].shape[1]} and a sentence of "
                         f"{state['quest_proj.proj.weight'].shape[1]}: give the CLIP file it was trained with "
                         f"(OpenAI's ViT-L-14-336px.pt for the release's best.pt)")
    if wrong:
        raise SystemExit(f"{path}: tensors of other shapes than the model's: "
                         + ", ".join(f"{k} {list(state[k].shape)} (model {list(expected[k].shape)})" for k in wrong)
                         + ": test it with the --answer2idx, --d_model, --video_dim, --patch_dim and --num_experts "
                           "it was trained with")
    return {k: v.float() for k, v in state.items()}
