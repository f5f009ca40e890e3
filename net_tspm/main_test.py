"""Test a TSPM checkpoint: the per-type table, the JSON report, and the release's result files.

    python net_tspm/main_test.py --Temp_Selection --top_k 10 --Spatio_Perception \
        --checkpoint TSPM --model_save_dir net_tspm/models/ --result_dir net_tspm/results/

Reads <model_save_dir>/<checkpoint>.pt: this project's checkpoint or the release's (a plain
state_dict, keys possibly prefixed module.). Writes <model_save_dir>/<checkpoint>_<split>.json,
<result_dir>/<checkpoint>.result (question id, correct, truth index, predicted index per question)
and <result_dir>/<checkpoint>.acc. The test batch is --eval_batch_size (any size gives the same
answers; the release's --batch-size 1 is accepted and changes nothing here). See docs/tspm.md.
"""
import sys

from avqa.tspm.run import main

if __name__ == "__main__":
    sys.exit(main("test", description=__doc__))
