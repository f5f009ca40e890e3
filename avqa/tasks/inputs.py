"""A run's inputs, checked before any training: annotation files and the feature files they name."""
from __future__ import annotations

from typing import Callable, Sequence

from ..annotations import MAX_QUESTION_LEN, AnnotationError, Vocab, load_annotations
from ..data import AUDIO_SHAPE, VISUAL_SHAPE, FeatureError, FeatureStore, encode_split, visual_buffer


def load_split(path: str, vocab: Vocab | None = None, samples: list[dict] | None = None,
               max_tokens: int | None = MAX_QUESTION_LEN, encode: Callable = encode_split):
    """The validated rows of an annotation file; with ``vocab``, encoded by ``encode`` (``samples``: rows already
    read; ``max_tokens``: the longest question the model reads, None for any)."""
    if samples is None:
        try:
            samples = load_annotations(path, max_tokens=max_tokens)
        except (AnnotationError, FileNotFoundError) as e:
            raise SystemExit(str(e)) from None
    if not samples:
        raise SystemExit(f"{path} holds no questions (an empty list): give a file with at least one question")
    if vocab is None:
        return samples
    try:
        return encode(samples, vocab, path)
    except AnnotationError as e:
        raise SystemExit(str(e)) from None


def feature_stores(args, video_ids: Sequence[str], need_visual: bool, need_audio: bool = True,
                   reads=None, hold: bool = True):
    """Open and check every feature file the run will read, before any training.

    ``reads(T)``: the seconds of each video the run reads; a folder extracted with --used_seconds
    that lacks one of them stops the run here, not thousands of batches in. ``hold``: keep the features
    in memory when they fit (FeatureStore.hold); without it every read goes to the files.
    """
    audio = FeatureStore(args.audio_dir, AUDIO_SHAPE) if need_audio else None
    visual = FeatureStore(args.video_res14x14_dir, VISUAL_SHAPE) if need_visual else None
    lengths = []
    try:
        if audio is not None:
            lengths.append(audio.check(video_ids, finite=not args.no_feature_check, name="audio features"))
        if visual is not None:
            lengths.append(visual.check(video_ids, finite=not args.no_feature_check, name="visual features"))
    except FeatureError as e:
        raise SystemExit(str(e)) from None
    if len(set(lengths)) > 1:
        raise SystemExit(f"audio features have T={lengths[0]} seconds but visual features T={lengths[1]}: "
                         f"extract both with the same --seconds")
    total = lengths[0] if lengths else 0
    for store in (audio, visual):
        gap = store.missing_seconds(reads(total)) if store is not None and reads is not None else []
        if gap:
            raise SystemExit(f"{store.folder} holds only seconds {store.computed.tolist()} of each video (extracted "
                             f"with --used_seconds), but this run reads second(s) {gap[:8]}: extract it again with "
                             f"--used_seconds --segments {args.segments}, or without --used_seconds")
    # a run reads each second many times: from memory, when the features fit there (FeatureStore.hold)
    try:
        if hold and audio is not None:
            audio.hold(video_ids)
        if hold and visual is not None:
            visual.hold(video_ids, visual_buffer)
    except FeatureError as e:
        raise SystemExit(str(e)) from None
    return audio, visual, total
