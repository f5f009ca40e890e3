"""AVST, the first model family: its entry in avqa.registry (``family``), its main-job stages
(``stages``) and its ablation ladder (``ladder``). The models are in avqa.models, the scripts' flags
in avqa.tasks.cli, train and test in avqa.tasks.qa and the grounding pre-training in
avqa.tasks.grounding."""
