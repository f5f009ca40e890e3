"""avqa.download against a local mirror (a file:// folder with each repository's layout): no network."""
import contextlib
import json
import socket
import threading
import time

import pytest

from avqa import download
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


@contextlib.contextmanager
def _silent_server():
    """A server on 127.0.0.1 that accepts connections (the kernel completes them from its backlog) and never
    answers; closing it at the end resets every connection, so nothing outlives the test."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


def _run_bounded(argv, limit):
    """main(argv) in a thread given ``limit`` seconds: (exit status or SystemExit message, seconds, finished)."""
    box = {}

    def target():
        try:
            box["result"] = main(argv)
        except SystemExit as e:
            box["result"] = e.code
    start = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit)
    return box.get("result"), time.monotonic() - start, not worker.is_alive()


def test_a_server_that_never_answers_is_given_up_at_once_in_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "FIRST_BYTE_S", 0.5, raising=False)  # the default, 5 s, is the same path
    with _silent_server() as url:
        result, took, finished = _run_bounded(["--base_url", url, "--out", str(tmp_path / "data")], 10)
    assert finished and took < 5, f"still waiting after {took:.1f} s"
    assert isinstance(result, str) and "127.0.0.1" in result and "no answer within 0.5 s" in result
    assert "0 file(s) downloaded, 12 not" in result and "--base_url" in result
    assert capsys.readouterr().err == ""  # no line per file
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.json"))


def test_the_timeout_flag_is_one_deadline_for_every_file(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "FIRST_BYTE_S", 30.0, raising=False)  # only the overall deadline stops it
    with _silent_server() as url:
        result, took, finished = _run_bounded(["--base_url", url, "--out", str(tmp_path), "--timeout", "1"], 10)
    assert finished and took < 5, f"still waiting after {took:.1f} s"
    assert isinstance(result, str) and "the --timeout ran out" in result and "12 not" in result


def test_no_dns_is_one_sentence_not_a_line_per_url(tmp_path, monkeypatch, capsys):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path)])
    message = str(stop.value.code)
    assert "raw.githubusercontent.com" in message and "does not resolve" in message and "12 not" in message
    assert capsys.readouterr().err == ""
