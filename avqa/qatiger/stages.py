"""QA-TIGER's feature stages of the main job: what it reads under the set's ``feats/``, in its release's
layout (avqa.qatiger.standin), made with the synthetic-world stand-ins.

- ``tspm_clip_frames`` and ``tspm_tokens``: TSPM's stages, listed here too so that QA-TIGER runs
  without ``--tspm``; the features are extracted once, for both families;
- ``qatiger_clip_frames``: ``feats/frame_ViT-L14@336px`` linked to TSPM's CLIP frame folder;
- ``qatiger_tokens``: ``feats/visual_tome14``, ToMe tokens of every second's frame [T,14,192]. TSPM's
  token folder holds one frame per second where the clips last at most its 10 token frames (the
  synthetic sets' 10 s and the tiny set's 4 s): it is linked. Longer clips get their own extraction.

VGGish is the main job's ``vggish`` stage. The question encoder is the stand-in CLIP file itself
(standin.TEXT_ENCODER), read by QA-TIGER's training; nothing is extracted for it. Each stage checks its
own outputs; avqa.pipeline skips, resumes and redoes them as it does the main job's.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..features.files import valid_npy
from ..stage import Stage, print_report
from ..tspm import stages as tspm_stages
from ..tspm.stages import MAX_TOKEN_FRAMES, TSPMStages, _weights_id
from ..utils import metadata_path
from .standin import FOLDERS, TOKENS, StandinConfig, extract_tokens_per_second, link_to_tspm, linked_to_tspm

if TYPE_CHECKING:
    from ..job import MainJob


class QATigerFeatureStages:
    """QA-TIGER's feature stages of one main job (``job``: its set, folders and settings)."""

    def __init__(self, job: MainJob):
        self.job = job
        self.cfg = StandinConfig(job.data, job.seconds, job.args.device, tspm_stages.STANDIN_VIT)
        self.share_tokens = job.seconds <= MAX_TOKEN_FRAMES  # TSPM's tokens are then one frame per second

    def frames_check(self) -> str | None:
        return linked_to_tspm(self.cfg, "frames") or self.job.each_file(
            self.cfg.folder("frames"), ".npy", lambda p: valid_npy(p, (self.cfg.seconds, 768)))

    def tokens_check(self) -> str | None:
        folder = self.cfg.folder("tokens")
        problem = linked_to_tspm(self.cfg, "tokens") if self.share_tokens else None
        if problem:
            return problem
        try:
            recorded = json.loads(metadata_path(folder).read_text())
        except (OSError, ValueError):
            return f"{metadata_path(folder)} missing"
        if recorded.get("token_seconds") != list(range(self.cfg.seconds)):
            return f"{metadata_path(folder)} is not one token frame per second of {self.cfg.seconds}"
        width = recorded.get("shape_per_video", [None])[-1]
        return self.job.each_file(folder, ".npy", lambda p: valid_npy(p, (self.cfg.seconds, TOKENS, width)))

    def stages(self) -> list[Stage]:
        frames, tokens, vit = self.cfg.folder("frames"), self.cfg.folder("tokens"), self.cfg.vit_weights
        tspm = [s for s in TSPMStages(self.job).stages()
                if s.name == "tspm_clip_frames" or self.share_tokens and s.name == "tspm_tokens"]
        if self.share_tokens:
            make_tokens = Stage("qatiger_tokens", f"QA-TIGER: ToMe tokens of every second [T,{TOKENS},D], linked to "
                                                  f"TSPM's as feats/{FOLDERS['tokens']}", ["tspm_tokens"],
                                lambda: link_to_tspm(self.cfg, "tokens"), self.tokens_check,
                                [tokens, metadata_path(tokens)], keep_outputs=True)
        else:
            make_tokens = Stage("qatiger_tokens", f"QA-TIGER: ToMe tokens of every second [T,{TOKENS},D] (stand-in "
                                                  f"{vit.name})", ["generate"],
                                lambda: print_report(extract_tokens_per_second(self.cfg)), self.tokens_check,
                                [tokens, metadata_path(tokens)], {"weights_sha256": _weights_id(vit), "tokens": TOKENS})
        return [
            *tspm,
            Stage("qatiger_clip_frames", f"QA-TIGER: CLIP frame features [T,768], linked to TSPM's as "
                                         f"feats/{FOLDERS['frames']}", ["tspm_clip_frames"],
                  lambda: link_to_tspm(self.cfg, "frames"), self.frames_check, [frames, metadata_path(frames)],
                  keep_outputs=True),
            make_tokens,
        ]
