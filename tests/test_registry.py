"""One registry of model families (avqa.registry): the library iterates it and never names a family, so a
family the library has never heard of (tests/toyfamily) moves in with one line and gets, with no other
edit, train and test from its script, its stages in the main job, its ladder rungs, avqa.ask's answers
and the scorer's table."""
from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from avqa import registry
from conftest import ROOT, copy_of_main_job, e2e_fixture

# where no branch may name a family: the engine, the checkpoint module, the tasks, the main job, the ladder,
# the scorer
NEUTRAL = ["avqa/engine", "avqa/checkpoint.py", "avqa/tasks", "avqa/job.py",
           "avqa/pipeline.py", "avqa/ladder.py", "avqa/ladder_families.py", "avqa/evaluate", "avqa/registry.py"]
BRANCH = re.compile(r"""(==|!=|\bin\b|\bis\b)\s*\(?["'](avst|tspm|question_only|baseline)["']|"""
                    r"""["'](avst|tspm)["']\s*(==|!=)""")


def test_the_registry_lists_avst_tspm_then_qatiger_each_from_its_own_package():
    assert [e.name for e in registry.entries()] == ["avst", "tspm", "qatiger"]
    assert all(registry.REGISTERED[name].startswith(f"avqa.{name}.") for name in ("avst", "tspm", "qatiger"))
    assert registry.owner("question_only").name == "avst" and registry.owner("tspm").name == "tspm"
    assert registry.owner("qatiger").name == "qatiger" and not registry.entry("qatiger").in_main_job
    assert registry.owner("nothing") is None
    assert list(registry.answering()) == ["avst"]
    with pytest.raises(KeyError, match="registered: avst, tspm, qatiger"):
        registry.entry("nothing")


def test_no_branch_on_a_family_name_where_the_library_must_not_know_families():
    """git grep for a comparison with a family's name in the modules that iterate the registry."""
    found = subprocess.run(["git", "grep", "-n", "-E", r"""(==|!=| in | is )\(?["'](avst|tspm|question_only)["']""",
                            "--", *NEUTRAL], cwd=ROOT, capture_output=True, text=True).stdout
    assert found == "", found
    for path in NEUTRAL:
        for f in ([ROOT / path] if path.endswith(".py") else sorted((ROOT / path).rglob("*.py"))):
            hits = [line for line in f.read_text().splitlines() if BRANCH.search(line)]
            assert not hits, (f, hits)


def test_the_main_jobs_family_flag_and_its_tspm_spelling():
    from avqa.pipeline import TSPM_SPELLING, family_list
    assert family_list("tspm,avst") == ["avst", "tspm"] == family_list(TSPM_SPELLING)
    with pytest.raises(Exception, match="unknown family nothing; choose from avst, tspm, qatiger"):
        family_list("avst,nothing")


def test_tspm_and_family_together_are_refused_and_an_unknown_family_named(capsys):
    from avqa.pipeline import main
    for argv, said in ((["--tspm", "--family", "avst"], "--tspm is a spelling of --family avst,tspm: give one of the two"),
                       (["--family", "avst,qa_tiger"], "unknown family qa_tiger; choose from avst, tspm, qatiger")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and said in capsys.readouterr().err


def test_the_ladders_families_come_from_the_registry():
    from avqa.ladder import parse_args
    from avqa.ladder_families import ladder_families
    assert list(ladder_families()) == ["avst", "tspm", "qatiger"]
    assert parse_args(["--family", "tspm"]).family is registry.entry("tspm").ladder


def test_each_familys_config_composes_the_engines_section_with_its_own_and_the_engine_reads_only_that():
    """TSPMConfig has the engine's section and TSPM's, none of the original scripts' inputs; RunConfig lists every
    flag of its scripts in their order; the engine's modules read no field of a config outside the engine's
    section."""
    import ast
    from dataclasses import fields
    from avqa.tasks.config import AVSTInputs, EngineConfig, RunConfig
    from avqa.tspm.run import TSPMConfig
    engine, avst = {f.name for f in fields(EngineConfig)}, {f.name for f in fields(AVSTInputs)}
    assert engine <= {f.name for f in fields(TSPMConfig)} and not avst & {f.name for f in fields(TSPMConfig)}
    assert sorted(RunConfig.order) == sorted((engine | avst) - {"script"}) and "segments" not in EngineConfig.recipe_flags
    read = set()
    for f in sorted((ROOT / "avqa" / "engine").rglob("*.py")):
        read |= {node.attr for node in ast.walk(ast.parse(f.read_text()))
                 if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                 and node.value.id in ("cfg", "args", "config")}
    assert read and read <= engine | {"flags", "recipe_flags", "model_flags", "EngineConfig"}, read - engine


# ----------------------------------------------------------------------------- a family the library does not know


@pytest.fixture(scope="module")
def toy():
    registry.register("toy", "toyfamily:FAMILY")  # the one line
    yield registry.entry("toy")
    registry.REGISTERED.pop("toy")
    registry._loaded.pop("toy", None)


def _quiet(fn, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = fn(*args)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue()


@e2e_fixture(scope="module")
def toy_job(toy, tiny_main_job, tmp_path_factory):
    """The tiny main job with --family avst,toy: AVST's stages skip, the toy's train and test."""
    from avqa.pipeline import main
    root = copy_of_main_job(tiny_main_job, tmp_path_factory, "toy")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("TQDM_DISABLE", "1")
        code, out = _quiet(main, ["--tiny", "--data", "data", "--out", "out", "--family", "avst,toy"])
    assert code == 0, out[-3000:]
    return root, out


def test_the_toys_stages_run_in_the_main_job_and_its_table_is_in_the_summary(toy_job):
    root, out = toy_job
    summary = json.loads((root / "out" / "summary.json").read_text())
    ran = {s["stage"]: s["status"] for s in summary["stages"]}
    assert list(ran)[-2:] == ["toy", "test_toy"] and ran["toy"] == ran["test_toy"] == "ran"
    assert all(status.startswith("skipped") for s, status in ran.items() if s not in ("toy", "test_toy")), ran
    assert list(summary["tables"]) == ["avst", "question_only", "toy"]
    assert summary["toy_overall"] == summary["tables"]["toy"]["Overall"]["accuracy"]
    assert f"toy: overall {summary['toy_overall']:.2f}%" in out
    ckpt = json.loads((root / "out" / "toy_test.json").read_text())
    assert ckpt["model"] == "toy" and len(ckpt["predictions"]) == ckpt["questions"] > 0


def test_the_engine_trains_the_toy_with_its_own_losses_optimiser_and_schedule(toy_job):
    from avqa import checkpoint
    root, _ = toy_job
    last = checkpoint.load_dict(root / "out" / "toy" / "toy_last.pt")
    assert [h["epoch"] for h in last["history"]] == [0, 1, 2]
    assert set(last["history"][1]) == {"epoch", "loss", "answer_loss", "spread_loss", "val_accuracy"}
    assert last["history"][1]["spread_loss"] > 0
    assert "momentum" in last["optimizer"]["param_groups"][0]  # SGD's, not Adam's
    assert last["scheduler"]["lr_lambdas"] == [None] and "step_size" not in last["scheduler"]
    log = (root / "out" / "toy" / "toy.log").read_text()
    assert re.search(r"epoch 2: loss [\d.]+ \(answer [\d.]+, spread [\d.]+\), lr 5\.00e-01", log), log


def test_the_toys_script_tests_its_checkpoint_and_the_scorer_scores_the_report(toy_job, tmp_path):
    import toyfamily

    from avqa.evaluate.cli import main as evaluate
    root, _ = toy_job
    d = root / "data" / "json"
    report = tmp_path / "toy_again.json"
    code, out = _quiet(toyfamily.main, ["--mode", "test", "--audio_dir", str(root / "data" / "feats" / "vggish"),
                                        "--label_train", str(d / "avqa-train.json"),
                                        "--label_test", str(d / "avqa-test.json"),
                                        "--model_save_dir", str(root / "out" / "toy"), "--checkpoint", "toy",
                                        "--results", str(report)])
    assert code == 0 and "toy on" in out
    first, again = (json.loads(p.read_text()) for p in (root / "out" / "toy_test.json", report))
    assert again["table"] == first["table"] and again["predictions"] == first["predictions"]
    code, out = _quiet(evaluate, [str(report), "--annotations", str(d / "avqa-test.json"), "--out",
                                  str(tmp_path / "scored")])
    assert code == 0
    scored = json.loads((tmp_path / "scored.json").read_text())
    assert json.dumps(scored).count(f"{first['table']['Overall']['accuracy']:.2f}") or \
        first["table"]["Overall"]["accuracy"] == pytest.approx(
            next(v for k, v in _walk(scored) if k == "Overall")["accuracy"], abs=0.01)


def _walk(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def test_ask_answers_with_the_toy(toy_job):
    from avqa.annotations import load_annotations, tokenize
    from avqa.ask import load_answerer
    root, _ = toy_job
    sample = load_annotations(root / "data" / "json" / "avqa-test.json")[0]
    answerer = load_answerer(root / "out" / "toy" / "toy.pt")
    reply = answerer.answer(root / "data" / "videos" / f"{sample['video_id']}.mp4", " ".join(tokenize(sample)) + "?")
    assert reply.answer in answerer.vocab.answers and 0 < reply.probability <= 1


def test_python_m_avqa_ask_formats_the_toys_answer_with_its_own_lines(toy_job, tmp_path, capsys):
    """The command line answers with any registered family's answerer: the answer, then the lines its answerer
    adds; --json writes its reply; --sheet, which the toy cannot draw, is refused in one sentence."""
    from avqa.annotations import load_annotations, tokenize
    from avqa.ask.cli import main
    root, _ = toy_job
    sample = load_annotations(root / "data" / "json" / "avqa-test.json")[0]
    argv = [str(root / "data" / "videos" / f"{sample['video_id']}.mp4"), " ".join(tokenize(sample)) + "?",
            "--model_save_dir", str(root / "out" / "toy"), "--checkpoint", "toy"]
    assert main([*argv, "--json", str(tmp_path / "toy.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    reply = json.loads((tmp_path / "toy.json").read_text())
    assert lines[:2] == [f"answer: {reply['answer']}   (probability {reply['probability']:.4f})",
                         "(the toy answers from the question alone)"]
    assert main([*argv, "--sheet", str(tmp_path / "sheet.png")]) == 1
    assert "--sheet: the model of" in capsys.readouterr().err and not (tmp_path / "sheet.png").exists()


def test_the_ladder_runs_the_toys_rungs(toy_job):
    from avqa.ladder import main
    root, _ = toy_job
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        code, out = _quiet(main, ["--family", "toy", "--data", "data", "--out", "ladder_toy", "--epochs", "1",
                                  "--batch-size", "16", "--quiet"])
    assert code == 0, out[-2000:]
    ladder = json.loads((root / "ladder_toy" / "ladder.json").read_text())
    assert [r["model"] for r in ladder["rungs"]] == ["toy_small", "toy"] and ladder["family"] == "toy"
    assert "the toy family's rungs on data/json/avqa-test.json" in out
