"""The synthetic set: schema, determinism, playable files, answers from the scene, balance."""
import json
import os
import subprocess
from collections import Counter, defaultdict

import av
import imageio_ffmpeg
import numpy as np
import pytest

from avqa.annotations import ANSWERS, INSTRUMENTS, QUESTION_TYPES, load_annotations, question_type, tokenize
from avqa.media import rgb_array
from avqa.synthetic.generate import parse_args, plan
from avqa.templates import TEMPLATES
from conftest import TINY_FLAGS, run_here


@pytest.fixture(scope="module")
def default_plan():
    """Scenes and questions of the default demo set (planning only: no pixels)."""
    return plan(parse_args([]))


def test_default_set_covers_every_template_and_type(default_plan):
    scenes, rows = default_plan
    assert len(scenes) == 480 and all(s.seconds == 10 for s in scenes)
    all_rows = [r for split in rows.values() for r in split]
    assert len(all_rows) >= 3000
    assert {r["question_content"] for r in all_rows} == {t for t, _, _ in TEMPLATES}
    assert len(TEMPLATES) == 33
    assert {question_type(r) for r in all_rows} == set(QUESTION_TYPES)
    assert {r["anser"] for r in all_rows} <= ANSWERS
    assert max(len(tokenize(r)) for r in all_rows) <= 14


def test_the_generator_answers_the_templates_of_avqa_templates_and_no_other():
    """The templates are data (avqa.templates, which avqa.ask reads too); the generator adds only an answerer to
    each, and refuses one for a question that is not a template."""
    from avqa.synthetic.questions import _ANSWERERS, answers
    assert list(_ANSWERERS) == [t for t, _, _ in TEMPLATES]
    with pytest.raises(ValueError, match="not one of the templates"):
        answers("Is the <Object> purple?")


def test_question_text_alone_does_not_give_the_answer(default_plan):
    _, rows = default_plan
    for split, split_rows in rows.items():
        by_template = defaultdict(Counter)
        for r in split_rows:
            by_template[r["question_content"]][r["anser"]] += 1
        for text, answers in by_template.items():
            n = sum(answers.values())
            if n >= 20:
                assert answers.most_common(1)[0][1] <= 0.6 * n, (split, text, answers)


def test_composed_clips_are_marked_as_the_real_data_marks_them_and_left_out_of_grounding(default_plan):
    """A clip carrying another clip's sound gets the 'va' prefix, so grounding reads only clips with their own sound."""
    from avqa.data import real_videos
    scenes, rows = default_plan
    composed = {s.video_id for s in scenes if s.audio_from is not None}
    assert len(composed) >= 20 and all(v.startswith("va") and v[2:].isdigit() for v in composed)
    assert all(s.video_id.isdigit() for s in scenes if s.audio_from is None)
    assert all(s.audio_from.isdigit() for s in scenes if s.audio_from is not None)  # a lender is never composed
    for split, r in rows.items():
        grounding = set(real_videos(r))
        assert grounding and not grounding & composed
        assert grounding | (composed & {x["video_id"] for x in r}) == {x["video_id"] for x in r}


def test_splits_are_by_video(default_plan):
    _, rows = default_plan
    videos = {split: {r["video_id"] for r in r_} for split, r_ in rows.items()}
    assert not (videos["train"] & videos["val"]) and not (videos["train"] & videos["test"])
    assert not (videos["val"] & videos["test"])


def test_files_schema_and_ground_truth(tiny_set):
    for split in ("train", "val", "test"):
        samples = load_annotations(tiny_set / "json" / f"avqa-{split}.json")
        raw = json.loads((tiny_set / "json" / f"avqa-{split}.json").read_text())
        for s in raw:
            assert set(s) == {"video_id", "question_id", "type", "question_content", "templ_values",
                              "question_deleted", "anser"}
            assert isinstance(s["type"], str) and isinstance(s["templ_values"], str)
            vid = s["video_id"].removeprefix("va")
            assert len(vid) == 8 and vid.isdigit()
        assert samples
    gt = json.loads(next((tiny_set / "ground_truth").glob("*.json")).read_text())
    assert gt["seconds"] == 4 and len(gt["sampled_frame_numbers"]) == 4
    for inst in gt["instruments"]:
        assert inst["class"] in INSTRUMENTS and len(inst["boxes"]) == 4
        for x0, y0, x1, y1 in inst["boxes"]:
            assert 0 <= x0 < x1 <= gt["width"] and 0 <= y0 < y1 <= gt["height"]


def test_answers_follow_the_ground_truth(tiny_set):
    counts = {"one": 1, "two": 2, "three": 3, "four": 4, "zero": 0}
    checked = Counter()
    for split in ("train", "val", "test"):
        for s in load_annotations(tiny_set / "json" / f"avqa-{split}.json"):
            gt = json.loads((tiny_set / "ground_truth" / f"{s['video_id']}.json").read_text())
            q, vals = s["question_content"], json.loads(s["templ_values"])
            if q == "Where is the performance?":
                assert s["anser"] == gt["background"]
            elif q == "How many types of musical instruments appeared in the entire video?":
                assert counts[s["anser"]] == len({i["class"] for i in gt["instruments"]})
            elif q == "Is there a <Object> in the entire video?":
                assert (s["anser"] == "yes") == (vals[0] in {i["class"] for i in gt["instruments"]})
            elif q == "Is there a <Object> sound?":
                assert (s["anser"] == "yes") == (vals[0] in {h["class"] for h in gt["heard"]})
            elif q == "Is this sound from the instrument in the video?":
                assert (s["anser"] == "yes") == (gt["sound_from"] is None)
            elif q == "Is there a voiceover?":
                assert (s["anser"] == "yes") == (gt["voiceover"] is not None)
            elif q == "Are there <Object> and <Object> instruments in the video?":
                assert (s["anser"] == "yes") == (set(vals) <= {i["class"] for i in gt["instruments"]})
            elif q.rstrip() == "Are there <Object> and <Object> sound?":
                assert (s["anser"] == "yes") == (set(vals) <= {h["class"] for h in gt["heard"]})
            elif q == "How many <Object> are in the entire video?":
                assert counts[s["anser"]] == sum(i["class"] == vals[0] for i in gt["instruments"])
            elif q.rstrip() == "What kind of instrument is the <LRer> instrument?":
                by_slot = sorted(gt["instruments"], key=lambda i: i["slot"])
                assert s["anser"] == by_slot[0 if vals[0] == "leftest" else -1]["class"]
            elif q == "Is the <Object> in the video always playing?":
                inst = next(i for i in gt["instruments"] if i["class"] == vals[0])
                assert (s["anser"] == "yes") == (inst["playing"] == [[0, gt["seconds"]]])
            elif q in ("Is the <Object> louder than the <Object>?", "Is the <Object> playing longer than the <Object>?"):
                a, b = (next(h for h in gt["heard"] if h["class"] == v) for v in vals)
                if "louder" in q:
                    assert (s["anser"] == "yes") == (a["level_db"] > b["level_db"])
                else:
                    def length(h):
                        return sum(end - start for start, end in h["playing"])
                    assert (s["anser"] == "yes") == (length(a) > length(b))
            elif q == "What is the <TH> instrument that comes in?":
                players = sorted((i for i in gt["instruments"] if i["playing"]), key=lambda i: i["playing"][0][0])
                assert s["anser"] == players[["first", "second", "third", "fourth", "fifth"].index(vals[0])]["class"]
            else:
                continue
            checked[q] += 1
    assert sum(checked.values()) >= 40 and len(checked) >= 10, checked


def test_same_seed_same_bytes_and_frames(tmp_path, tiny_set):
    again = tmp_path / "again"
    run_here("-m", "avqa.synthetic", "--out", str(again), *TINY_FLAGS)
    for split in ("train", "val", "test"):
        assert (again / "json" / f"avqa-{split}.json").read_bytes() == (tiny_set / "json" / f"avqa-{split}.json").read_bytes()
    for gt in (tiny_set / "ground_truth").glob("*.json"):
        assert (again / "ground_truth" / gt.name).read_bytes() == gt.read_bytes()
    videos = sorted((tiny_set / "videos").glob("*.mp4"))
    assert videos and all((again / "videos" / v.name).read_bytes() == v.read_bytes() for v in videos)
    vid = videos[0]
    with av.open(str(vid)) as a, av.open(str(again / "videos" / vid.name)) as b:
        fa = [rgb_array(f) for f in a.decode(video=0)]
        fb = [rgb_array(f) for f in b.decode(video=0)]
    assert len(fa) == len(fb) == 48 and all(np.array_equal(x, y) for x, y in zip(fa, fb))


@pytest.mark.e2e
def test_encoding_a_clip_again_gives_the_same_bytes(tmp_path, default_plan):
    """With libx264's macroblock tree on, clip 90000040 of the demo set encodes differently run to run
    (2-3 distinct files in 40 encodes, features up to 0.18 apart); the generator turns it off."""
    import hashlib
    from avqa.synthetic.render import render_clip
    scene = next(s for s in default_plan[0] if s.video_id == "90000040")
    digests = set()
    for k in range(25):
        path = tmp_path / f"{k}.mp4"
        render_clip(scene, path, 320, 240, 25.0, 22050)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_pictures_of_demo_clips_are_pinned(default_plan):
    """Every frame and box of three demo clips (four instruments; two) hashes as the generator of the
    published set drew them: a faster drawing must give the same pixels."""
    import hashlib
    from avqa.synthetic.render import background, compose_frame
    scenes = default_plan[0]
    digest = hashlib.sha256()
    for scene in (next(s for s in scenes if s.video_id == "90000040"), scenes[0], scenes[5]):
        bg = background(scene, 320, 240)
        for k in range(250):
            frame, boxes = compose_frame(scene, bg, k / 25.0)
            digest.update(frame.tobytes())
            digest.update(repr(boxes).encode())
    assert digest.hexdigest() == "f99f5f7f8a5013e6a3fb82b88c62de0548c5c10ce5b5de523eccf60ae218d73b"


def test_a_sprite_is_pasted_only_where_its_mask_is_and_clipped_at_the_edges():
    from avqa.synthetic.render import _paste
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
    mask = rng.random((30, 20)) < 0.5
    for x0, y0 in ((5, 7), (-6, -9), (52, 35), (-25, 0), (60, 80)):
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        want = frame.copy()
        for y, x in zip(*np.nonzero(mask)):
            if 0 <= y0 + y < 48 and 0 <= x0 + x < 64:
                want[y0 + y, x0 + x] = rgb[y, x]
        _paste(frame, x0, y0, rgb, np.repeat(mask[..., None], 3, axis=2))
        assert np.array_equal(frame, want), (x0, y0)


def test_stock_ffmpeg_decodes_picture_and_sound(tiny_set):
    vid = sorted((tiny_set / "videos").glob("*.mp4"))[0]
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", str(vid)], capture_output=True, text=True).stderr
    assert "Video: h264" in probe and "Audio: aac" in probe
    decode = subprocess.run([ffmpeg, "-v", "error", "-i", str(vid), "-f", "null", "-"], capture_output=True, text=True)
    assert decode.returncode == 0 and decode.stderr == ""


def test_rerun_with_same_flags_does_nothing(tiny_set):
    out = run_here("-m", "avqa.synthetic", "--out", str(tiny_set), *TINY_FLAGS).stdout
    assert "nothing to do" in out


@pytest.mark.parametrize("flags, message", [
    (["--num_clips", "0"], "--num_clips must be at least 1"),
    (["--instruments", "violin,theremin"], "unknown instrument(s) theremin"),
    (["--max_instruments", "5"], "more than the 4 positions"),
])
def test_impossible_settings_are_refused(tmp_path, flags, message):
    proc = run_here("-m", "avqa.synthetic", "--out", str(tmp_path / "x"), *flags, check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "x").exists()


def test_real_annotations_are_never_overwritten(tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "avqa-train.json").write_text("[]")
    proc = run_here("-m", "avqa.synthetic", "--out", str(tmp_path), "--num_clips", "2", check=False)
    assert proc.returncode != 0 and "did not write" in proc.stderr
    assert (tmp_path / "json" / "avqa-train.json").read_text() == "[]"


@pytest.mark.e2e
def test_sixty_second_clips_as_in_the_real_data(tmp_path):
    out = tmp_path / "long"
    run_here("-m", "avqa.synthetic", "--out", str(out), "--num_clips", "3", "--seconds", "60", "--width", "160",
             "--height", "120", "--fps", "10", "--split", "1,1,1")
    gt = json.loads(next((out / "ground_truth").glob("*.json")).read_text())
    assert gt["seconds"] == 60 and gt["frames"] == 600 and len(gt["sampled_frame_numbers"]) == 60
    assert all(len(i["boxes"]) == 60 for i in gt["instruments"])
    with av.open(str(out / "videos" / f"{gt['video_id']}.mp4")) as c:
        assert abs(float(c.duration) / 1e6 - 60) < 0.2


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_limited_to_one_cpu_renders_with_one_worker_and_says_one_core():
    from avqa.machine import describe_machine
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})  # as taskset or a container's CPU limit leaves a process
    try:
        assert parse_args(["--out", "x"]).workers == 1
        assert ", 1 cores" in describe_machine()
    finally:
        os.sched_setaffinity(0, allowed)
    assert parse_args(["--out", "x"]).workers == len(allowed)
