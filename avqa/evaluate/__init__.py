"""Score any model's answers on MUSIC-AVQA test files with one protocol: the standard table.

    python -m avqa.evaluate PREDICTIONS --annotations data/music_avqa/json_update/avqa-test.json
    python -m avqa.evaluate preds.csv --annotations head.json --annotations tail.json   # parts of one set
    python -m avqa.evaluate A.result B.json --annotations test.json                     # is the gap real?

The table is the one of the paper and of every successor: accuracy on the nine question types, the
Audio, Visual and Audio-Visual averages weighted by question count (all questions of the group
pooled, not the mean of the type accuracies) and the overall accuracy. Test mode of the training
scripts prints it through the same functions (:func:`score_table`, :func:`format_table`).

Before any number, the protocol is checked: the annotation file's name, sha256 and question count
are printed, and predictions that cover another question set are refused with how many questions
are missing and extra, and which known annotation file they do match (the original ``json`` test
set holds 9,185 rows, the corrected ``json_update`` one 9,129). Questions are named by
:func:`avqa.annotations.question_key` (the ``question_id``; a stable hash for v2.0 rows without
one).

Predictions may be: this project's test report (``--results`` of test mode); a tab-separated
result file as TSPM-style code writes it (question id, True/False, truth index, predicted index),
scored by mapping the predicted index through the answer vocabulary after its truth indices and
verdicts are checked against the annotation file (:mod:`avqa.evaluate.indices`); or a JSON object,
JSON list or CSV file that maps a question key to an answer string. Answer strings are judged under
a convention (:mod:`avqa.evaluate.conventions`): by default :func:`normalise`, which maps free text
("Yes.", "There are two.", "the left one") onto the 42 answers; answers it cannot map count as wrong
and are reported with examples.

Several predictions files are compared with the first, question by question: a paired bootstrap
interval of each difference and McNemar's exact test per row (:mod:`avqa.evaluate.compare`).
The protocol is described in docs/evaluation.md.
"""
from __future__ import annotations

from .cli import main
from .normalise import FAMILIES, FAMILY_OF, normalise
from .predictions import ANSWER_FIELDS, KEY_FIELDS, EvaluationError, Predictions, read_predictions
from .scoring import score
from .sets import AnnotationSet, check_coverage, conflicting_rows, known_files
from .table import (RELEASE_ACC_NAMES, TABLE_ROWS, format_table, markdown_table, percent, release_acc_text, result_line,
                    score_table)

__all__ = ["ANSWER_FIELDS", "FAMILIES", "FAMILY_OF", "KEY_FIELDS", "RELEASE_ACC_NAMES", "TABLE_ROWS", "AnnotationSet",
           "EvaluationError", "Predictions", "check_coverage", "conflicting_rows", "format_table", "known_files", "main",
           "markdown_table", "normalise", "percent", "read_predictions", "release_acc_text", "result_line", "score",
           "score_table"]
