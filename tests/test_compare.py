"""avqa.evaluate A B: the paired bootstrap interval and McNemar's exact test, checked by hand and against
SciPy's exact binomial test; self-comparison and 100 changed answers on a result file in TSPM's format made
from the real json_update test file; the per-video CSV; the json test file's conflicting duplicates."""
import csv
import json
import math
import random

import numpy as np
import pytest
from scipy.stats import binomtest

from avqa.annotations import QUESTION_TYPES, load_annotations
from avqa.evaluate import result_line
from avqa.evaluate.compare import compare_pair, mcnemar_p
from conftest import REAL, run_here

needs_real = pytest.mark.skipif(REAL is None, reason="the real MUSIC-AVQA annotation files are not here "
                                                     "(set AVQA_REAL_ANNOTATIONS to their folder)")


def test_mcnemar_by_hand_and_against_scipy():
    assert mcnemar_p(5, 0) == pytest.approx(2 * 0.5 ** 5)  # 0.0625
    assert mcnemar_p(1, 6) == pytest.approx(2 * (1 + 7) / 2 ** 7)  # 0.125
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(3, 3) == 1.0 and mcnemar_p(4, 5) == 1.0
    for b, c in [(10, 2), (30, 45), (0, 13), (200, 160), (1000, 1100)]:
        assert mcnemar_p(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def _exact_quantiles(n, p_b, p_a, qs):
    """Quantiles (inverse CDF) of 100 (X - Y) / n, (X, Y, n - X - Y) multinomial: the bootstrap distribution."""
    dist = {}
    for x in range(n + 1):
        for y in range(n + 1 - x):
            pr = math.comb(n, x) * math.comb(n - x, y) * p_b ** x * p_a ** y * (1 - p_b - p_a) ** (n - x - y)
            d = 100 * (x - y) / n
            dist[d] = dist.get(d, 0) + pr
    values, cdf = sorted(dist), np.cumsum([dist[v] for v in sorted(dist)])
    return [values[int(np.searchsorted(cdf, q))] for q in qs], dict(zip(values, cdf))


def test_bootstrap_interval_is_the_exact_resampling_distribution_of_a_hand_made_pair():
    """Ten questions of one type: B alone right on 4, A alone on 1, both right on 3, both wrong on 2.
    B - A is 30 points; the interval is the 2.5 and 97.5 percentiles of the difference over resamples of
    the ten questions, which the exact multinomial distribution gives: [-10, +70]."""
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([1, 1, 1, 1, 0, 1, 1, 1, 0, 0], bool)
    types = np.zeros(10, int)
    rows = compare_pair(a, b, types, resamples=20_000, seed=3)
    r = rows["Audio Counting"]
    assert (r["a"], r["b"], r["difference"], r["only_b"], r["only_a"]) == (40.0, 70.0, 30.0, 4, 1)
    assert r["p"] == pytest.approx(2 * (1 + 5) / 2 ** 5) and r["verdict"] == "within noise"  # 0.375
    (low, high), cdf = _exact_quantiles(10, 0.4, 0.1, [0.025, 0.975])
    assert (low, high) == (-10.0, 70.0)
    # no percentile near a step of the distribution (P(<= -20) = 0.0144, P(<= -10) = 0.0438, P(<= 60) = 0.9634,
    # P(<= 70) = 0.9909), so 20,000 resamples find the exact quantiles
    assert cdf[-20.0] < 0.02 and cdf[-10.0] > 0.03 and cdf[60.0] < 0.97 and cdf[70.0] > 0.98
    assert r["interval"] == [low, high]
    assert rows["Overall"] == {**r, "count": 10} and rows["Visual Counting"]["interval"] is None
    # the same seed gives the same interval; every question the same: a zero interval and p = 1
    assert compare_pair(a, b, types, resamples=20_000, seed=3) == rows
    same = compare_pair(a, a, types, resamples=1000, seed=0)["Overall"]
    assert same["difference"] == 0 and same["interval"] == [0, 0] and same["p"] == 1.0


def test_each_type_is_resampled_within_itself():
    """All questions of type 0 are B's alone, all of type 1 A's alone: each type's interval is a point, and the
    Audio group's (50 of each) is a point at 0 because the counts per type are held fixed."""
    types = np.array([0] * 50 + [1] * 50)
    a = np.array([False] * 50 + [True] * 50)
    rows = compare_pair(a, ~a, types, resamples=500, seed=1)
    assert rows["Audio Counting"]["interval"] == [100.0, 100.0] and rows["Audio Comparative"]["interval"] == [-100.0, -100.0]
    assert rows["Audio Avg"]["interval"] == [0.0, 0.0] and rows["Audio Avg"]["p"] == 1.0
    assert rows["Audio Counting"]["verdict"] == "B ahead" and rows["Audio Comparative"]["verdict"] == "A ahead"


def _tspm_style_result(rows, path, right_share=0.77, seed=0, changed=()):
    """A result file in TSPM's format (question id, True/False, truth, predicted index) for ``rows``."""
    answers = list(dict.fromkeys(r["anser"] for r in rows))
    rng = random.Random(seed)
    lines = []
    for i, r in enumerate(rows):
        t = answers.index(r["anser"])
        p = t if rng.random() < right_share else rng.randrange(len(answers))
        if i in changed:
            p = (t + 1) % len(answers)
        lines.append(result_line(r["question_id"], p == t, t, p))
    path.write_text("\n".join(lines) + "\n")
    return lines


@needs_real
def test_a_result_file_against_itself_and_against_100_changed_answers(tmp_path):
    test = REAL / "json_update" / "avqa-test.json"
    rows = load_annotations(test)
    a = tmp_path / "TSPM.result"
    lines = _tspm_style_result(rows, a)
    right = [i for i, line in enumerate(lines) if " \t True \t " in line]
    changed = set(random.Random(1).sample(right, 100))
    b = tmp_path / "changed.result"
    _tspm_style_result(rows, b, changed=changed)
    out = run_here("-m", "avqa.evaluate", a, a, "--annotations", test, "--out", tmp_path / "self").stdout
    assert "within noise" in out and "ahead" not in out
    overall = json.loads((tmp_path / "self.json").read_text())["comparisons"][0]["rows"]["Overall"]
    assert overall["difference"] == 0 and overall["p"] == 1.0 and overall["interval"] == [0, 0]
    run_here("-m", "avqa.evaluate", a, b, "--annotations", test, "--out", tmp_path / "changed", "--resamples", "2000")
    report = json.loads((tmp_path / "changed.json").read_text())
    overall = report["comparisons"][0]["rows"]["Overall"]
    assert (overall["only_a"], overall["only_b"]) == (100, 0) and overall["difference"] == round(-100 * 100 / 9129, 2)
    assert overall["interval"][1] < 0 and overall["p"] < 1e-20 and overall["verdict"] == "A ahead"
    assert report["resamples"] == 2000 and report["protocol"] == "official"
    assert report["annotations"][0]["sha256"] and report["annotations"][0]["path"] == str(test)
    assert "| Overall |" in (tmp_path / "changed.md").read_text()


@needs_real
def test_the_json_test_files_conflicting_duplicates_are_listed_once_with_the_corrected_file(tmp_path):
    test = REAL / "json" / "avqa-test.json"
    rows = load_annotations(test)
    preds = tmp_path / "yes.json"
    preds.write_text(json.dumps({str(r["question_id"]): "yes" for r in rows}))
    out = run_here("-m", "avqa.evaluate", preds, preds, "--annotations", test).stdout
    assert out.count("holds 55 question key(s) more than once with different gold answers") == 1
    assert "1138 (two / four)" in out and "(110 rows)" in out
    assert f"{REAL / 'json_update' / 'avqa-test.json'} drops and corrects them" in out


def test_accuracy_per_video_is_written_as_csv(tmp_path):
    rows = [{"question_id": i + 1, "video_id": v, "type": json.dumps(list(QUESTION_TYPES[i % 9])),
             "question_content": "Is the <Object> playing?", "templ_values": '["piano"]', "question_deleted": 0,
             "anser": "yes"} for i, v in enumerate(["00000001"] * 3 + ["00000002"] * 2 + ["00000003"])]
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps(rows))
    said = ["yes", "no", "no", "yes", "yes", "no"]
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({str(i + 1): s for i, s in enumerate(said)}))
    out = run_here("-m", "avqa.evaluate", preds, "--annotations", ann, "--by_video", tmp_path / "videos.csv").stdout
    table = list(csv.DictReader((tmp_path / "videos.csv").open()))
    assert [(r["video_id"], r["questions"], r["right"], r["wrong"], r["accuracy"]) for r in table] == [
        ("00000001", "3", "1", "2", "33.33"), ("00000003", "1", "0", "1", "0.0"), ("00000002", "2", "2", "0", "100.0")]
    assert "00000001: 2 wrong of 3 questions" in out
