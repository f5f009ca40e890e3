"""Ask AVST a question about a video: the inference API, and ``python -m avqa.ask`` (cli.py).

Load a checkpoint and its backbones once, then answer many (video, question) pairs::

    from avqa.ask import load_answerer
    answerer = load_answerer("net_grd_avst/avst_models/avst.pt")
    for video, question in pairs:
        result = answerer.answer(video, question)   # an Answer; AskError names bad input
        print(result.answer, result.probability, result.notes)

Where the parts live: trained.py (the checkpoint and what its features were made with), question.py
(reading a question, its template and type), features.py (the backbones and the clip's inputs, as
the extractors make them), answerer.py (the model's answer and attention), cli.py (the command line).
"""
from .answerer import Answer, Answerer, attention_sheet, load_answerer
from .cli import main
from .errors import AskError
from .question import infer_template, read_question

__all__ = ["Answer", "Answerer", "AskError", "attention_sheet", "infer_template", "load_answerer", "main",
           "read_question"]
