"""Two CPU processes under DistributedDataParallel make the same update as one process on the whole batch."""
import os
import socket
from contextlib import nullcontext

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from avqa.models import AVST
from avqa.engine.loop import ddp_wrap, train_step
from avqa import registry
from avqa.tspm.model import TSPM
from avqa.tspm.run import FAMILY as TSPM_FAMILY
from conftest import AVST as SCRIPT, data_flags, run, run_here


class CPURuntime:
    scaler = None

    def autocast(self):
        return nullcontext()


def make_batch(B=8, T=3):
    g = torch.Generator().manual_seed(0)
    return {"audio": torch.rand(B, T, 128, generator=g) * 2,
            "visual_posi": torch.rand(B, T, 512, 14, 14, generator=g),
            "visual_nega": torch.rand(B, T, 512, 14, 14, generator=g),
            "question": torch.randint(1, 30, (B, 14), generator=g),
            "label": torch.randint(0, 12, (B,), generator=g)}


# plain SGD, so that the update is the gradient itself: Adam's first step is lr * g / (|g| + eps), which
# turns a rounding difference in a near-zero gradient into a full +-lr step
LR = 0.1


def fresh_model():
    torch.manual_seed(0)
    return AVST(vocab_size=30, num_answers=12, dropout=0.0)


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = fresh_model()
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    batch = make_batch()
    half = len(batch["label"]) // world
    local = {k: v[rank * half:(rank + 1) * half] for k, v in batch.items()}
    train_step(ddp, local, opt, CPURuntime(), registry.qa_models()["avst"].objective(0.5))
    if rank == 0:
        torch.save(model.state_dict(), out)
    dist.destroy_process_group()


@pytest.mark.e2e
def test_two_gloo_processes_equal_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, port, str(out)), nprocs=2, join=True)
    single = fresh_model()
    opt = torch.optim.SGD(single.parameters(), lr=LR)
    train_step(single, make_batch(), opt, CPURuntime(), registry.qa_models()["avst"].objective(0.5))
    ddp_state = torch.load(out, weights_only=True)
    start = fresh_model().state_dict()
    moved = 0
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ddp_state[k] - start[k], v - start[k], rtol=1e-3, atol=1e-6)
        moved += not torch.equal(v, start[k])
    assert moved > 20  # the step changed the weights


def _tspm_batch(B=8, T=6):
    g = torch.Generator().manual_seed(1)
    return {"audio": torch.rand(B, T, 128, generator=g), "visual": torch.rand(B, T, 768, generator=g),
            "tokens": torch.rand(B, 4, 14, 1024, generator=g), "question": torch.rand(B, 768, generator=g),
            "prompt": torch.rand(B, 768, generator=g), "label": torch.randint(0, 12, (B,), generator=g)}


def _tspm_worker(rank, world, port, out):
    """Two steps: DDP checks on the second that every parameter it waits for got a gradient."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TSPM(12, top_k=3)
    ddp = ddp_wrap(model, torch.device("cpu"))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(2):
        train_step(ddp, _tspm_batch(), opt, CPURuntime(), TSPM_FAMILY.objective(None))
    if rank == 0:
        torch.save(model.state_dict(), out)
    dist.destroy_process_group()


@pytest.mark.e2e  # two processes
def test_tspm_trains_under_ddp_though_its_selection_gets_no_gradient(tmp_path):
    """TSPM's temporal module and prompt projection only choose indices, so they never get a gradient
    (as in the release); DDP must be told, or its second step fails waiting for them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "tspm.pt"
    mp.spawn(_tspm_worker, args=(2, port, str(out)), nprocs=2, join=True)
    torch.manual_seed(0)
    start = TSPM(12, top_k=3).state_dict()
    trained = torch.load(out, weights_only=True)
    assert not torch.equal(trained["answer_pred_fc.weight"], start["answer_pred_fc.weight"])
    assert torch.equal(trained["input_qst_prompt.weight"], start["input_qst_prompt.weight"])


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    from avqa.engine.runtime import Runtime
    two = Runtime.__new__(Runtime)  # what torchrun's WORLD_SIZE=2 sets, without a process group
    two.world = 2
    assert two.per_process(8) == 4
    with pytest.raises(SystemExit, match="--batch-size 7 does not split evenly over 2 processes; pass a multiple"):
        two.per_process(7)


def test_torchrun_trains_on_two_cpu_processes(tiny_features, tmp_path):
    """The real launch path: torchrun, gloo process group, DistributedSampler, rank-0 validation."""
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT, *data_flags(tiny_features),
              "--device", "cpu", "--epochs", "1", "--pretrained_grounding", "none", "--tensorboard_dir", "",
              "--model_save_dir", str(tmp_path)]
    out = run(*launch, "--batch-size", "8", env={"OMP_NUM_THREADS": "1"}).stdout
    assert "2 process(es)" in out and "best val accuracy" in out
    ckpt = torch.load(tmp_path / "avst.pt", weights_only=True)
    assert ckpt["model"] == "avst" and not any(k.startswith("module.") for k in ckpt["state_dict"])
    table = run_here(SCRIPT, *data_flags(tiny_features), "--mode", "test", "--model_save_dir", str(tmp_path),
                     "--results", str(tmp_path / "r.json")).stdout
    assert "Overall" in table
