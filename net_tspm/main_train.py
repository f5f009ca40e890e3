"""Train TSPM (ACM MM 2024) on this project's engine, with the release's flags and recipe.

    python net_tspm/main_train.py --Temp_Selection --top_k 10 --Spatio_Perception \
        --batch-size 64 --epochs 30 --lr 1e-4 --checkpoint TSPM --model_save_dir net_tspm/models/

Writes <model_save_dir>/<checkpoint>.pt (best on --label_val), <checkpoint>_last.pt (--resume) and
<checkpoint>.log. Every feature file is checked before the first step. The feature layout, the
switches and the errors are described in docs/tspm.md. Several GPUs:
torchrun --nproc_per_node=N net_tspm/main_train.py ...
"""
import sys

from avqa.tspm.run import main

if __name__ == "__main__":
    sys.exit(main("train", description=__doc__))
