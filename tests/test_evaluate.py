"""avqa.evaluate: the table, every predictions format, the protocol checks, and the real annotation files."""
import hashlib
import json
import random

import pytest
import torch

from avqa.annotations import QUESTION_TYPES, fillers, question_key
from avqa.evaluate import EvaluationError, main, read_predictions, score_table
from conftest import REAL, V2, data_flags, needs_real, run_here


def test_the_table_is_test_modes_single_precision_mean_pooled_over_groups():
    """Each row is a float tensor's mean over the row's questions, as test mode always computed it; ties in
    the third decimal (1 of 160 is 0.625 %) round as that mean does."""
    rng = random.Random(0)
    for n in (1, 7, 160, 800, 1100, 9185):
        types = torch.tensor([rng.randrange(9) for _ in range(n)])
        correct = torch.tensor([rng.random() < 0.4 for _ in range(n)])
        if n == 160:
            types[:] = 0
            correct[:] = False
            correct[0] = True
        table = score_table(correct.numpy(), types.numpy())
        groups = {"Audio Avg": [0, 1], "Visual Avg": [2, 3], "AV Avg": [4, 5, 6, 7, 8], "Overall": list(range(9))}
        for name, row in table.items():
            idx = groups.get(name)
            if idx is None:
                idx = [next(i for i, t in enumerate(QUESTION_TYPES) if name.split()[-1] == t[1]
                            and name.startswith({"Audio": "Audio ", "Visual": "Visual ", "Audio-Visual": "AV "}[t[0]]))]
            mask = torch.isin(types, torch.tensor(idx))
            assert row["count"] == int(mask.sum())
            want = round(100.0 * correct[mask].float().mean().item(), 2) if mask.any() else None
            assert row["accuracy"] == want, (n, name)
    assert score_table(correct.numpy()[:0], types.numpy()[:0])["Overall"] == {"accuracy": None, "count": 0}


# ----------------------------------------------------------------------------- a small annotation file

def _row(qid, video, qtype, answer, content="How many <Object> are in the video?", values='["piano"]'):
    r = {"video_id": video, "type": json.dumps(list(qtype)), "question_content": content, "templ_values": values,
         "question_deleted": 0, "anser": answer}
    if qid is not None:
        r["question_id"] = qid
    return r


@pytest.fixture
def small(tmp_path):
    """Nine questions, one per type, the last without a question_id (as in v2.0), and a second file that
    lacks one question."""
    answers = ["two", "yes", "three", "left", "no", "right", "one", "yes", "piano"]
    rows = [_row(i + 1 if i < 8 else None, f"0000000{i}" if i < 8 else "tOcOiTFQYp4_flip", t, a)
            for i, (t, a) in enumerate(zip(QUESTION_TYPES, answers))]
    path = tmp_path / "ann" / "test.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rows))
    other = tmp_path / "ann" / "test_small.json"
    other.write_text(json.dumps(rows[1:]))
    return path, rows


def _evaluate(*args, check=True):
    return run_here("-m", "avqa.evaluate", *map(str, args), check=check)


def test_a_row_without_question_id_gets_the_documented_key(small):
    _, rows = small
    r = rows[-1]
    text = json.dumps([r["question_content"].strip(), fillers(r), json.loads(r["type"])])
    assert question_key(r) == "tOcOiTFQYp4_flip/" + hashlib.sha256(text.encode()).hexdigest()[:12]
    assert question_key(rows[0]) == "1" and question_key({**rows[0], "question_id": 47859.0}) == "47859"


def test_every_format_gives_the_same_table(small, tmp_path):
    path, rows = small
    keys = [question_key(r) for r in rows]
    said = ["Two.", "yes", "There are 4.", "the left one", "No.", "on the left", "one", "Nope", "The piano."]
    right = [True, True, False, True, True, False, True, False, True]
    vocab = sorted({r["anser"] for r in rows} | {"four"})
    files = {
        "object.json": json.dumps(dict(zip(keys, said))),
        "list.json": json.dumps([{"question_id": k, "answer": a} for k, a in zip(keys, said)]),
        "report.json": json.dumps({"predictions": [{"row": i, "key": k, "prediction": a}
                                                   for i, (k, a) in enumerate(zip(keys, said))]}),
        "header.csv": "question_id,answer\n" + "".join(f'{k},"{a}"\n' for k, a in zip(keys, said)),
        "plain.csv": "".join(f'{k},"{a}"\n' for k, a in zip(keys, said)),
        # truth and predicted answer indices in a vocabulary the lines imply (each gold answer its own index)
        "tspm.result": "".join(f"{k} \t {c} \t {vocab.index(r['anser'])} \t "
                               f"{vocab.index(r['anser'] if c else 'four')}\n" for k, c, r in zip(keys, right, rows)),
    }
    tables = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        out = _evaluate(tmp_path / name, "--annotations", path, "--out", tmp_path / f"eval_{name}").stdout
        assert f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}" in out and "9 questions" in out
        tables[name] = json.loads((tmp_path / f"eval_{name}.json").read_text())["tables"][str(path)]
        assert "| Overall | 66.67 (9) |" in (tmp_path / f"eval_{name}.md").read_text()
    assert all(t == tables["object.json"] for t in tables.values())
    expected = score_table(right, list(range(9)))
    assert tables["object.json"] == expected and expected["Overall"]["accuracy"] == 66.67


def test_other_question_sets_are_refused_naming_missing_extra_and_the_matching_file(small, tmp_path):
    path, rows = small
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({question_key(r): "yes" for r in rows[1:]} | {"999": "no"}))
    err = _evaluate(preds, "--annotations", path, check=False)
    assert err.returncode != 0 and not (tmp_path / "p.eval.json").exists()
    assert "1 missing (e.g. 1)" in err.stderr and "1 not in it (e.g. 999)" in err.stderr
    preds.write_text(json.dumps({question_key(r): "yes" for r in rows[1:]}))
    err = _evaluate(preds, "--annotations", path, check=False).stderr
    assert f"exactly those of {path.parent / 'test_small.json'}" in err and str(path) in err


def test_conflicting_duplicates_are_named_and_malformed_files_explained(small, tmp_path):
    path, rows = small
    keys = [question_key(r) for r in rows]
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([{"question_id": k, "answer": "yes"} for k in keys] + [{"question_id": keys[2], "answer": "no"}]))
    with pytest.raises(EvaluationError, match=r"3 \('yes' and 'no'\)"):
        read_predictions(dup)
    same = tmp_path / "same.json"
    same.write_text(json.dumps([{"question_id": k, "answer": "yes"} for k in keys] + [{"question_id": keys[2], "answer": "yes"}]))
    assert read_predictions(same).repeated == ["3"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question,answer,score\n1,q,yes,0.5\n")
    assert read_predictions(bad).answers == {"1": "yes"}
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(EvaluationError, match="needs a header naming a key column"):
        read_predictions(bad)
    tab = tmp_path / "x.result"
    tab.write_text("1\tmaybe\t3\t4\n")
    with pytest.raises(EvaluationError, match="line 1"):
        read_predictions(tab)


def test_unmapped_answers_count_as_wrong_and_are_reported(small, tmp_path):
    path, rows = small
    preds = tmp_path / "llm.json"
    preds.write_text(json.dumps({question_key(r): ("I cannot tell." if i < 3 else r["anser"]) for i, r in enumerate(rows)}))
    out = _evaluate(preds, "--annotations", path).stdout
    assert "3 answer(s) name none of the 42 answers" in out and "'I cannot tell.' (3)" in out
    report = json.loads((tmp_path / "llm.eval.json").read_text())
    assert report["unmapped_answers"] == 3 and report["tables"][str(path)]["Overall"]["accuracy"] == 66.67


def test_several_files_are_parts_of_one_set(small, tmp_path):
    path, rows = small
    head = tmp_path / "head.json"
    tail = tmp_path / "tail.json"
    head.write_text(json.dumps(rows[:4]))
    tail.write_text(json.dumps(rows[4:]))
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({question_key(r): "yes" for r in rows}))
    assert main([str(preds), "--annotations", str(head), "--annotations", str(tail)]) == 0
    rep = json.loads((tmp_path / "p.eval.json").read_text())
    assert rep["tables"][str(head)]["Overall"] == {"accuracy": 25.0, "count": 4}
    assert rep["tables"][str(tail)]["Overall"] == {"accuracy": 20.0, "count": 5}
    assert rep["combined"]["Overall"] == {"accuracy": 22.22, "count": 9}


def test_an_avst_test_report_round_trips_to_the_same_table(trained, tiny_features, tmp_path):
    report = tmp_path / "avst_test.json"
    out = run_here("net_grd_avst/main_avst.py", *data_flags(tiny_features), "--mode", "test", "--model_save_dir",
                   str(trained / "avst"), "--results", str(report)).stdout
    ann = tiny_features / "json" / "avqa-test.json"
    again = _evaluate(report, "--annotations", ann).stdout
    printed = [line for line in out.splitlines() if line.startswith("  ")]
    assert printed and printed == [line for line in again.splitlines() if line.startswith("  ")]
    assert json.loads((tmp_path / "avst_test.eval.json").read_text())["tables"][str(ann)] == \
        json.loads(report.read_text())["table"]


# ----------------------------------------------------------------------------- the real files

def _real_files():
    out = []
    if REAL:
        out += sorted(REAL.glob("json*/*.json"))
    if V2:
        out += sorted(V2.glob("*.json"))
    return out


@pytest.mark.skipif(not _real_files(), reason="no real annotation files here (../shared/data/music_avqa*/)")
def test_every_real_file_validates_and_is_described():
    files = _real_files()
    out = run_here("-m", "avqa.annotations", "--brief", *map(str, files)).stdout
    assert out.count(" QA over ") == len(files)
    if V2:
        assert "1,724 questions have no question_id" in out and "YouTube ids" in out and "_flip" in out
        for f in V2.glob("*.json"):
            keys = [question_key(s) for s in json.loads(f.read_text())]
            assert len(keys) == len(set(keys)), f"{f}: keys must be unique"


def _test_files():
    files = [REAL / "json" / "avqa-test.json", REAL / "json_update" / "avqa-test.json"] if REAL else []
    return files + ([V2 / "test_balance.json", V2 / "test_bias.json"] if V2 else [])


@pytest.mark.skipif(not _test_files(), reason="no real test files here (../shared/data/music_avqa*/)")
@pytest.mark.parametrize("index", range(4))
def test_all_yes_on_each_real_test_file_equals_a_hand_count(index, tmp_path):
    files = _test_files()
    if index >= len(files):
        pytest.skip("that file is not here")
    path = files[index]
    samples = json.loads(path.read_text())
    preds = tmp_path / "yes.json"
    preds.write_text(json.dumps({question_key(s): "yes" for s in samples}))
    assert main([str(preds), "--annotations", str(path)]) == 0
    table = json.loads((tmp_path / "yes.eval.json").read_text())["tables"][str(path)]
    # by hand: per type, the rows whose answer is yes, pooled per group
    names = ["Audio Counting", "Audio Comparative", "Visual Counting", "Visual Location", "AV Existential",
             "AV Location", "AV Counting", "AV Comparative", "AV Temporal"]
    yes, total = dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    for s in samples:
        name = names[QUESTION_TYPES.index(tuple(json.loads(s["type"])))]
        total[name] += 1
        yes[name] += s["anser"] == "yes"
    groups = {"Audio Avg": names[:2], "Visual Avg": names[2:4], "AV Avg": names[4:], "Overall": names}
    for name, members in [(n, [n]) for n in names] + list(groups.items()):
        k, n = sum(yes[m] for m in members), sum(total[m] for m in members)
        assert table[name]["count"] == n
        assert abs(table[name]["accuracy"] - 100 * k / n) <= 0.005 + 1e-9, name
    assert table["Overall"]["count"] == len(samples)


@needs_real
def test_json_and_json_update_predictions_are_refused_on_each_other(tmp_path):
    orig, upd = REAL / "json" / "avqa-test.json", REAL / "json_update" / "avqa-test.json"
    for made_on, scored_on in ((orig, upd), (upd, orig)):
        preds = tmp_path / "p.json"
        preds.write_text(json.dumps({question_key(s): "yes" for s in json.loads(made_on.read_text())}))
        err = _evaluate(preds, "--annotations", scored_on, check=False)
        assert err.returncode != 0
        assert f"exactly those of {made_on.resolve()}" in err.stderr and str(scored_on) in err.stderr
        rows = len(json.loads(made_on.read_text()))
        assert f"({rows:,} rows)" in err.stderr and "47300" in err.stderr
