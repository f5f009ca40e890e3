"""The checkpoint's features, computed again for one clip: the backbones its features were made with
(given, found by the sha256 its record names, or its seeded init), run by the extractors' own runner on
the extractors' own inputs."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..features.backbones import BACKBONES as EXTRACTORS, record_path
from ..features.inputs import load_frames, load_sound
from ..features.metadata import MADE_WITH, feature_metadata
from ..features.network import Runner
from ..features.weights import DEFAULT_OUT
from ..media import MediaError
from ..utils import sha256
from .errors import AskError
from .trained import BACKBONES, LABELS, REPO


@dataclass
class Setting:
    """How one backbone is run: the extractors' flags, chosen from the checkpoint's record."""

    weights: str | None
    seed: int
    bf16: bool
    jpeg: int | None
    recorded: dict | None
    source: str | None


def weights_places(name: str, recorded: dict) -> list[Path]:
    """Where the weights a record names may be: the recorded path, then the synthetic backbone's place
    (each as given when absolute, else from the current folder and from the repository)."""
    out: list[Path] = []
    for place in filter(None, (recorded.get("weights"), DEFAULT_OUT[BACKBONES[name][2]])):
        for p in (Path(place),) if Path(place).is_absolute() else (Path.cwd() / place, REPO / place):
            if p.resolve() not in {q.resolve() for q in out}:
                out.append(p)
    return out


def weights_sha256(path: Path) -> str:
    """A weights file's sha256: from its own record (<name>.json, written by avqa.features.pretrain) when
    there, which saves hashing 275 MB; the runner hashes the file it loads anyway, and says if it differs."""
    try:
        digest = json.loads(record_path(path).read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        digest = None
    return digest or sha256(path)


def find_weights(name: str, recorded: dict) -> Path | None:
    """The weights file whose sha256 the record names, in one of ``weights_places``."""
    return next((p for p in weights_places(name, recorded)
                 if p.is_file() and weights_sha256(p) == recorded.get("weights_sha256")), None)


def rebuild_hint(name: str, wanted: str) -> str:
    """The command that makes exactly the file of sha256 ``wanted``, or that none here does."""
    from ..features.weights import BUNDLED_VGGISH
    flag = BACKBONES[name][0]
    if name == "vggish":
        try:
            bundled = json.loads(record_path(BUNDLED_VGGISH).read_text())["weights"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            bundled = None
        if wanted == bundled:
            return (f"`python -m avqa.features.pretrain vggish --assemble` rebuilds exactly that file (byte for byte, "
                    f"in seconds) at {DEFAULT_OUT['vggish']}, replacing what is there (add --out FILE and give FILE "
                    f"with {flag} to keep it)")
    else:
        shipped = REPO / DEFAULT_OUT["res18"]
        try:
            ships = json.loads(record_path(shipped).read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            ships = None
        if wanted == ships:
            return f"it is shipped with the repository: restore it with `git checkout {DEFAULT_OUT['res18']}`"
    return (f"no command here rebuilds a file of that sha256 (training the backbone again gives other weights): find "
            f"that file and give it with {flag}")


def missing_weights(name: str, recorded: dict, source: str | None) -> AskError:
    """Which weights file the checkpoint's features were made with, what is here instead, and the fix."""
    wanted = str(recorded.get("weights_sha256"))
    places = weights_places(name, recorded)
    expected = recorded.get("weights") or DEFAULT_OUT[BACKBONES[name][2]]
    found = [f"{p} (sha256 {weights_sha256(p)})" for p in places if p.is_file()]
    instead = (f"found instead: {'; '.join(found)}" if found
               else f"no file at {', '.join(str(p) for p in places)}")
    return AskError(f"the {LABELS[name]} weights this checkpoint's features were made with are not here: "
                    f"{expected}, sha256 {wanted} (recorded in {source or 'its training run'}); {instead}. To fix "
                    f"it: {rebuild_hint(name, wanted)}.")


def backbone_setting(name: str, given: str | None, features: dict[str, tuple[dict, str]]) -> Setting:
    """The given weights, else those the checkpoint's record names (found by sha256), else its seeded init."""
    recorded, source = features.get(name, (None, None))
    bf16 = bool(recorded) and str(recorded.get("precision", "")).startswith("bfloat16")
    jpeg = recorded.get("jpeg_roundtrip_quality") if recorded else None
    if given or not recorded:
        return Setting(given, 0, bf16, jpeg, recorded, source)
    seeded = re.fullmatch(r"random, seed (\d+)", str(recorded.get("init", "")))
    if seeded:
        return Setting(None, int(seeded.group(1)), bf16, jpeg, recorded, source)
    found = find_weights(name, recorded)
    if found is None:
        raise missing_weights(name, recorded, source)
    return Setting(str(found), 0, bf16, jpeg, recorded, source)


def build_backbone(name: str, s: Setting, seconds: int, device: str) -> tuple[Runner, list[str]]:
    """The extractors' runner of backbone ``name``, and a note if its settings are not the checkpoint's."""
    try:
        runner = Runner(name, s.weights, s.seed, device, s.bf16, flag=BACKBONES[name][0])
    except SystemExit as e:  # the runner's one sentence about a missing or foreign weights file
        raise AskError(str(e.code)) from None
    notes = []
    if s.recorded is None:
        how = s.weights or "a seeded random init (seed 0, as the extractors without weights)"
        notes.append(f"no record of the {LABELS[name]} features this checkpoint was trained with: using {how}; "
                     f"its answers mean something only if its features were made with the same weights "
                     f"({BACKBONES[name][0]})")
    else:
        meta = feature_metadata(name, runner, seconds, device, s.bf16)
        meta["jpeg_roundtrip_quality"] = s.jpeg if name == "res18_14x14" else None
        diffs = [f"{k} {s.recorded[k]!r} then, {meta.get(k)!r} now" for k in MADE_WITH
                 if k in s.recorded and s.recorded[k] != meta.get(k)]
        if diffs:
            notes.append(f"{LABELS[name]} features are not made as those this checkpoint was trained with "
                         f"({'; '.join(diffs)}; recorded in {s.source}): its answer may mean little")
    return runner, notes


def check_video(video: Path) -> None:
    """An AskError unless ``video`` is a file: a folder is called one, not "no such file"."""
    if video.is_dir():
        raise AskError(f"{video} is a folder, not a video: give one video file (mp4, mkv, webm, ...)")
    if not video.is_file():
        raise AskError(f"{video}: no such file")


def read_sound(video: Path, seconds: int) -> tuple[torch.Tensor, list[str]]:
    """VGGish's input for T seconds, by the extractor's loader (short sound padded with silence, and said)."""
    try:
        return load_sound(video, seconds)
    except MediaError as e:
        hint = ("AVST answers from what it hears as well as what it sees: give a video with sound"
                if "no audio" in str(e) else "give a video file (mp4, mkv, webm, ...)")
        raise AskError(f"{e}: {hint}") from None


def read_frames(video: Path, seconds: int, jpeg: int | None) -> tuple[torch.Tensor, list[str]]:
    """The 14x14 extractor's input, T frames at the 1 fps frame numbers (a short video repeats its last second, said)."""
    try:
        return load_frames(video, seconds, EXTRACTORS["res18_14x14"], jpeg)
    except MediaError as e:
        raise AskError(f"{e}: give a video file (mp4, mkv, webm, ...)") from None


