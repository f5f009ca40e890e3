"""Every backbone loads official-format weight files (made here), and the seeded random init."""
import importlib.util

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

from avqa.features import backbones as B
from avqa.features.tf_checkpoint import read_checkpoint
from conftest import ROOT, e2e_fixture, run

HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf_slim") is not None


@e2e_fixture(scope="module")
def tf_reference(tmp_path_factory):
    if not HAS_TF:
        pytest.skip("TensorFlow and tf-slim are not installed (optional test extra: pip install tensorflow-cpu tf-slim)")
    out = tmp_path_factory.mktemp("tfvggish")
    run(str(ROOT / "tests" / "tf_vggish_reference.py"), str(out), timeout=900)
    return out


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_vggish_from_official_tf_checkpoint_equals_tf_slim(tf_reference, version):
    io = np.load(tf_reference / "io.npz")
    model, info = B.build("vggish", tf_reference / version / "vggish_model.ckpt")
    with torch.no_grad():
        ours = model(torch.from_numpy(io["x"])).numpy()
    np.testing.assert_allclose(ours, io["y"], atol=1e-4, rtol=1e-4)
    assert info["init"] == "pretrained" and (info["sha256"] or version == "v2")


def test_tf_checkpoint_reader_reads_every_variable(tf_reference):
    tensors = read_checkpoint(tf_reference / "v1" / "vggish_model.ckpt")
    assert tensors["vggish/fc1/fc1_1/weights"].shape == (12288, 4096)
    assert tensors["vggish/conv3/conv3_2/weights"].shape == (3, 3, 256, 256)
    v2 = read_checkpoint(tf_reference / "v2" / "vggish_model.ckpt")
    np.testing.assert_array_equal(tensors["vggish/fc2/biases"], v2["vggish/fc2/biases"])


class PortVGGish(nn.Module):
    """The layout of the common PyTorch port (features.*, embeddings.*), written out independently."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, 1, 1), nn.ReLU(), nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(256, 512, 3, 1, 1), nn.ReLU(), nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.embeddings = nn.Sequential(nn.Linear(12288, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                                        nn.Linear(4096, 128), nn.ReLU())

    def forward(self, x):
        x = self.features(x[:, None])
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2).contiguous()  # NHWC, as TF
        return self.embeddings(x.view(x.size(0), -1))


@pytest.mark.e2e  # full-size networks: seconds each
def test_vggish_from_pytorch_port_state_dict(tmp_path):
    torch.manual_seed(0)
    port = PortVGGish().eval()
    state = dict(port.state_dict())
    state["pproc._pca_matrix"] = torch.zeros(128, 128)  # the port's PCA step rides along and is ignored
    torch.save(state, tmp_path / "vggish-10086976.pth")
    model, _ = B.build("vggish", tmp_path / "vggish-10086976.pth")
    x = torch.randn(2, 96, 64) - 2
    with torch.no_grad():
        torch.testing.assert_close(model(x), port(x))


@pytest.mark.parametrize("shape", [(4, 64, 96, 64), (2, 3, 7, 9), (1, 1, 3, 2)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_vggish_pooling_is_max_pool_2x2(shape, layout, dtype):
    """VGGish's pooling (the max of each window's four phases) gives nn.MaxPool2d(2, 2)'s values, NaN included,
    odd sizes floored, and keeps a channels-last map channels-last."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype).contiguous(memory_format=layout)
    x[0, 0, 0, 0] = float("nan")
    ours, theirs = B.MaxPool2x2()(x), nn.MaxPool2d(2, 2)(x)
    assert ours.shape == theirs.shape and ours.dtype == dtype and ours[0, 0, 0, 0].isnan()
    assert torch.equal(ours.nan_to_num(), theirs.nan_to_num())
    assert ours.is_contiguous(memory_format=layout) or x.shape[1] == 1


def _torchvision_14x14(net, x):
    net.layer4[0].conv1.stride = (1, 1)
    net.layer4[0].downsample[0].stride = (1, 1)
    y = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(y))))


@pytest.mark.e2e  # full-size networks: seconds each
@pytest.mark.parametrize("prefix", ["", "module.visual_net."])
def test_resnet18_from_torchvision_state_dict(tmp_path, prefix):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().eval()
    state = {prefix + k: v for k, v in reference.state_dict().items()}
    if prefix:
        state[prefix + "conv1_a.weight"] = torch.zeros(64, 1, 7, 7)  # the original's unused audio stem
    torch.save(state, tmp_path / "resnet18-5c106cde.pth")
    x = torch.randn(2, 3, 224, 224)
    model, _ = B.build("res18_14x14", tmp_path / "resnet18-5c106cde.pth")
    pooled, _ = B.build("res18", tmp_path / "resnet18-5c106cde.pth")
    with torch.no_grad():
        torch.testing.assert_close(pooled(x), _pooled(reference, x))
        ours = model(x)
        expect = _torchvision_14x14(reference, x)
        torch.testing.assert_close(ours, expect)
    assert ours.shape == (2, 512, 14, 14)
    fused = B.fuse_batchnorm(model)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), expect, rtol=1e-4, atol=1e-4)


def _pooled(net, x):
    y = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.avgpool(net.layer4(net.layer3(net.layer2(net.layer1(y))))).flatten(1)


@pytest.mark.e2e  # full-size networks: seconds each
def test_r2plus1d_from_torchvision_state_dict(tmp_path):
    torch.manual_seed(2)
    reference = torchvision.models.video.r2plus1d_18().eval()
    torch.save(reference.state_dict(), tmp_path / "r2plus1d_18-91a641e6.pth")
    model, _ = B.build("r2plus1d_18", tmp_path / "r2plus1d_18-91a641e6.pth")
    reference.fc = nn.Identity()
    x = torch.randn(3, 3, 112, 112)
    with torch.no_grad():
        expect = reference(x.unsqueeze(2))
        torch.testing.assert_close(model(x), expect)
        torch.testing.assert_close(B.fuse_batchnorm(model)(x), expect, rtol=1e-4, atol=1e-4)


def test_weights_of_another_network_are_refused(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="does not fit the vggish backbone"):
        B.build("vggish", tmp_path / "resnet.pth")


@pytest.mark.e2e  # full-size networks: seconds each
@pytest.mark.parametrize("name, shape", [("vggish", (2, 96, 64)), ("res18_14x14", (2, 3, 224, 224)),
                                         ("r2plus1d_18", (2, 3, 112, 112))])
def test_random_init_is_seeded_and_keeps_activations_alive(name, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) + (-2 if name == "vggish" else 0)
    a, info = B.build(name, None, seed=7)
    b, _ = B.build(name, None, seed=7)
    c, _ = B.build(name, None, seed=8)
    with torch.no_grad():
        ya, yb, yc = a(x), b(x), c(x)
    assert info == {"weights": None, "init": "random, seed 7"}
    torch.testing.assert_close(ya, yb)
    assert not torch.allclose(ya, yc)
    assert 0.05 < ya.std().item() < 20 and (ya > 0).float().mean() > 0.05
