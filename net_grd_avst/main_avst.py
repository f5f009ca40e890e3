"""Train or test the audio-visual spatial-temporal (AVST) model.

    python net_grd_avst/main_avst.py --mode train     # starts from grounding_gen's best checkpoint
    python net_grd_avst/main_avst.py --mode test      # per-type accuracy table and a JSON report

Defaults are the original recipe (Adam 1e-4, batch 64, 80 epochs, StepLR(8, 0.1), seed 1) and
read the synthetic default set under ./data. --model question_only trains the question-only
reference the same way. Several GPUs: torchrun --nproc_per_node=N net_grd_avst/main_avst.py ...
"""
import sys

from avqa.tasks.qa import run_qa

if __name__ == "__main__":
    sys.exit(run_qa("avst", description=__doc__))
