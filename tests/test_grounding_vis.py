"""The grounding score's rules on hand-made maps, and the sheets on the tiny trained models."""
import json

import numpy as np
from PIL import Image

from avqa.grounding_score import cells_in_box, next_to, score_map, peak_regions, scored_seconds, where_peak
from avqa.visualize import sheet_size
from conftest import run_here


def test_cells_in_box_uses_cell_centres():
    # a 140x140 frame: cells are 10 px, centres at 5, 15, ...; a box over x 20..50, y 0..30
    cells = cells_in_box([20, 0, 50, 30], 140, 140)
    assert cells.sum() == 3 * 3
    assert cells[0:3, 2:5].all()


def test_a_peak_inside_the_box_is_a_hit_and_outside_is_not():
    box = cells_in_box([20, 0, 50, 30], 140, 140)
    att = np.full((14, 14), 1.0)
    att[1, 3] = 5.0  # inside
    hit, mass = score_map(att, box)
    assert hit and np.isclose(mass, (8 + 5) / (195 + 5))
    att = np.full((14, 14), 1.0)
    att[10, 10] = 5.0  # outside
    hit, mass = score_map(att.ravel(), box)
    assert not hit and np.isclose(mass, 9 / 200)


def test_next_to_is_the_ring_of_touching_cells():
    box = cells_in_box([20, 0, 50, 30], 140, 140)  # rows 0-2, columns 2-4
    ring = next_to(box)
    assert not (ring & box).any()
    assert ring.sum() == 4 * 5 - 9  # rows 0-3, columns 1-5, less the box; nothing above row 0
    assert ring[3, 1] and ring[0, 5] and not ring[4, 3] and not ring[0, 6]


def test_where_a_peak_falls():
    target = cells_in_box([20, 0, 50, 30], 140, 140)   # rows 0-2, columns 2-4
    silent = cells_in_box([60, 0, 100, 30], 140, 140)  # rows 0-2, columns 6-9: column 5 touches both
    places = {}
    for name, cell in {"in": (1, 3), "below": (3, 3), "between": (1, 5), "on silent": (1, 7), "far": (10, 10)}.items():
        att = np.ones((14, 14))
        att[cell] = 2.0
        places[name] = where_peak(att.ravel(), peak_regions(target, silent))
    assert places == {"in": "playing", "below": "next", "between": "next", "on silent": "silent", "far": "elsewhere"}


def test_which_seconds_each_score_counts():
    # a 140x140 frame: three instruments side by side; the first plays in 0..3, the second in 2..4, the third never
    boxes = [[0, 0, 40, 140], [50, 0, 90, 140], [100, 0, 140, 140]]
    gt = {"sound_from": None, "width": 140, "height": 140, "instruments": [
        {"audible": True, "playing": [[0, 3]], "boxes": [boxes[0]] * 4},
        {"audible": True, "playing": [[2, 4]], "boxes": [boxes[1]] * 4},
        {"audible": False, "playing": [], "boxes": [boxes[2]] * 4}]}
    got = scored_seconds(gt, [0, 1, 2, 3])
    assert [s for s, _, _ in got["single_source"]] == [0, 1, 3]
    # every second has a silent instrument in view beside a playing one
    assert [s for s, _, _ in got["sounding_vs_silent"]] == [0, 1, 2, 3]
    second, target, silent = got["sounding_vs_silent"][2]  # second 2: the first two play, the third is silent
    assert np.array_equal(target, cells_in_box(boxes[0], 140, 140) | cells_in_box(boxes[1], 140, 140))
    assert np.array_equal(silent, cells_in_box(boxes[2], 140, 140))
    # a clip carrying another clip's sound counts for neither score
    assert scored_seconds(dict(gt, sound_from="90000001"), [0, 1]) == {"sounding_vs_silent": [], "single_source": []}


def test_a_cell_shared_by_a_playing_and_a_silent_box_is_no_hit():
    gt = {"sound_from": None, "width": 140, "height": 140, "instruments": [
        {"audible": True, "playing": [[0, 1]], "boxes": [[0, 0, 60, 140]]},
        {"audible": True, "playing": [], "boxes": [[40, 0, 100, 140]]}]}
    (_, target, silent), = scored_seconds(gt, [0])["sounding_vs_silent"]
    assert not (target & silent).any() and target[:, :4].all() and silent[:, 4:7].all()


def test_grounding_score_command(trained, tiny_features):
    d = tiny_features
    out = run_here("-m", "avqa.grounding_score", "--model", "grounding", "--checkpoint",
                   str(trained / "grd" / "main_grounding_gen_best.pt"), "--model", "avst", "--checkpoint",
                   str(trained / "avst" / "avst.pt"), "--label_train", str(d / "json" / "avqa-train.json"),
                   "--label_test", str(d / "json" / "avqa-train.json"), "--ground_truth", str(d / "ground_truth"),
                   "--audio_dir", str(d / "feats" / "vggish"), "--video_res14x14_dir",
                   str(d / "feats" / "res18_14x14"), "--out", str(trained / "score.json")).stdout
    assert "pointing game" in out and "chance" in out and "sounding vs silent" in out
    scores = json.loads((trained / "score.json").read_text())["scores"]
    assert set(scores) == {"grounding", "grounding, untrained", "avst", "avst, untrained"}
    for s in scores.values():
        pg = s["pointing_game"]
        assert pg["seconds_scored"] > 0 and 0 <= pg["hit"] <= 100 and 0 < pg["chance"] < 100
    # untrained AVST builds its audio encoder first from the same seed as untrained grounding: same attention
    assert scores["avst, untrained"] == scores["grounding, untrained"]


def _common(d):
    return ["--audio_dir", str(d / "feats" / "vggish"), "--video_res14x14_dir", str(d / "feats" / "res18_14x14"),
            "--frames_dir", str(d / "no_frames"), "--videos_dir", str(d / "videos"),
            "--label_test", str(d / "json" / "avqa-test.json")]


def test_avst_sheets_have_the_layout_size(trained, tiny_features, tmp_path):
    run_here("net_grd_avst/main_avst_vis.py", *_common(tiny_features), "--label_train",
             str(tiny_features / "json" / "avqa-train.json"), "--model_save_dir", str(trained / "avst"),
             "--out_dir", str(tmp_path), "--count", "3")
    sheets = sorted(tmp_path.glob("*.png"))
    assert len(sheets) == 3
    for p in sheets:
        img = Image.open(p)
        assert img.size == sheet_size(4, 160, 120)  # 4 seconds of 160x120 frames
        assert np.asarray(img).std() > 10  # frames and heatmaps, not a blank page


def test_grounding_sheets(trained, tiny_features, tmp_path):
    run_here("grounding_gen/main_grd_gen_vis.py", *_common(tiny_features), "--model_save_dir", str(trained / "grd"),
             "--out_dir", str(tmp_path), "--count", "2")
    sheets = sorted(tmp_path.glob("*.png"))
    assert len(sheets) == 2 and Image.open(sheets[0]).size == sheet_size(4, 160, 120)


def test_avst_sheets_from_frame_folders_keep_repeated_question_ids_apart(trained, tiny_features, tmp_path):
    """The real test file repeats some question_ids on one clip: each row gets its own sheet."""
    row = json.loads((tiny_features / "json" / "avqa-test.json").read_text())[0]
    labels = tmp_path / "repeated.json"
    labels.write_text(json.dumps([row, {**row, "anser": "zero" if row["anser"] != "zero" else "one"}]))
    frames = tmp_path / "frames"
    run_here("feat_script/extract_visual_frames/extract_frames_adaptive_script.py", "--dir_path",
             str(tiny_features / "videos"), "--dst_path", str(frames))
    out = tmp_path / "sheets"
    run_here("net_grd_avst/main_avst_vis.py", *_common(tiny_features), "--label_test", str(labels), "--frames_dir",
             str(frames), "--videos_dir", str(tmp_path / "no_videos"), "--label_train",
             str(tiny_features / "json" / "avqa-train.json"), "--model_save_dir", str(trained / "avst"),
             "--out_dir", str(out), "--question_ids", str(row["question_id"]))
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"{row['video_id']}_q{row['question_id']}.png", f"{row['video_id']}_q{row['question_id']}_2.png"]
    assert Image.open(out / names[0]).size == sheet_size(4, 160, 120)
