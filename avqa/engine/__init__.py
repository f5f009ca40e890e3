"""The model-agnostic engine: the process a run lives in, the epoch loop, the run's log, and what a
run may write over. Tasks (avqa.tasks) tell it how a model computes its loss; it never asks which."""
