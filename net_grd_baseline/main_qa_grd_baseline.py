"""Train or test the baseline: average-pooled frames and sound into question-guided temporal attention,
with no spatial grounding and no match loss.

    python net_grd_baseline/main_qa_grd_baseline.py --mode train
    python net_grd_baseline/main_qa_grd_baseline.py --mode test

Defaults are the original recipe (Adam 1e-4, batch 64, 20 epochs, StepLR(8, 0.1), seed 1).
"""
import sys

from avqa.tasks.qa import run_qa

if __name__ == "__main__":
    sys.exit(run_qa("baseline", description=__doc__))
