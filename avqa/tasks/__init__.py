"""The tasks a run performs (question answering, grounding pre-training): build, train and test,
each from a RunConfig; the original scripts' command lines fill that config (avqa.tasks.cli)."""
