"""avqa.download against a local mirror (a file:// folder with each repository's layout): no network."""
import json

from avqa.annotations import QUESTION_TYPES
from avqa.download import BENCHMARKS, main


def _rows(n, with_ids=True):
    return [{"video_id": "tOcOiTFQYp4_flip" if i % 2 else "00000001", "type": json.dumps(list(QUESTION_TYPES[0])),
             "question_content": "How many <Object> are in the entire video?", "templ_values": '["piano"]',
             "anser": "two", **({"question_id": i} if with_ids and i % 3 else {})} for i in range(n)]


def _mirror(root, benchmark, broken=None):
    for src in BENCHMARKS[benchmark]["files"]:
        path = root / src
        path.parent.mkdir(parents=True, exist_ok=True)
        if src.endswith(".csv"):
            path.write_text("video_id,start_time,duration,suffix,has_flip\nciAuN83h20Y,0:00,1:00,,N\n")
        else:
            path.write_text("not json" if src == broken else json.dumps(_rows(6)))
    return root.as_uri()


def test_v2_files_arrive_checked_with_their_licence(tmp_path, capsys):
    base = _mirror(tmp_path / "mirror", "v2")
    out = tmp_path / "data"
    assert main(["--benchmark", "v2", "--base_url", base, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GNU GPL v3" in printed and "6 QA over 2 videos" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(BENCHMARKS["v2"]["files"].values())
    assert json.loads((out / "test_balance.json").read_text()) == _rows(6)
    assert main(["--benchmark", "v2", "--base_url", base, "--out", str(out)]) == 0
    assert "already there" in capsys.readouterr().out


def test_a_broken_file_is_not_put_in_place_and_the_run_fails(tmp_path, capsys):
    base = _mirror(tmp_path / "mirror", "r", broken="dataset/MUSIC-AVQA-R/avqa-test-tail.json")
    out = tmp_path / "data"
    assert main(["--benchmark", "r", "--base_url", base, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "no licence named" in captured.out and "avqa-test-tail.json" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["avqa-test-head.json", "avqa-test-headtail.json"]


def test_r_files_outside_the_templates_are_kept_and_described(tmp_path, capsys):
    root = tmp_path / "mirror"
    _mirror(root, "r")
    rephrased = _rows(4)
    rephrased[1]["question_content"] = "Could you count the pianos that appear over the whole length of this video clip please?"
    rephrased[1]["templ_values"] = "[]"
    (root / "dataset/MUSIC-AVQA-R/avqa-test-head.json").write_text(json.dumps(rephrased))
    assert main(["--benchmark", "r", "--base_url", root.as_uri(), "--out", str(tmp_path / "data")]) == 0
    assert "1 row(s) outside the original templates" in capsys.readouterr().out
