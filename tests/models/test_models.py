import pytest
import torch

from trainwise.errors import ConfigError
from trainwise.models import MODELS, build_model


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"two-tower"}))  # paired data: test_two_tower_*
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_models_map_inputs_to_logits(name, shape):
    kw = {"width": 8} if name in ("cnn", "preact-resnet18") else {}
    m = build_model(name, shape, 10, torch.full((shape[0],), 0.5), torch.full((shape[0],), 0.25), **kw)
    assert m(torch.rand(2, *shape)).shape == (2, 10)


def test_normalisation_lives_inside_the_model():
    m = build_model("linear", (1, 2, 2), 2, torch.tensor([0.5]), torch.tensor([0.5]))
    lin = m.net[1]
    x = torch.rand(3, 1, 2, 2)
    assert torch.allclose(m(x), lin(((x - 0.5) / 0.5).flatten(1)))


def test_unknown_model_and_setting():
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("vgg", (1, 8, 8), 10, torch.zeros(1), torch.ones(1))
    with pytest.raises(ConfigError, match="allowed"):
        build_model("cnn", (1, 8, 8), 10, torch.zeros(1), torch.ones(1), depth=3)


@pytest.mark.parametrize("encoder, views", [("mlp", ((1, 28, 14), (1, 28, 14))), ("conv", ((1, 28, 14), (1, 28, 14))),
                                            ("mlp", ((16,), (5,)))])
def test_two_tower_embeds_each_view_of_a_paired_row_to_unit_norm(encoder, views):
    from trainwise.data.paired import halves

    d = sum(torch.Size(v).numel() for v in views)
    m = build_model("two-tower", views, 0, torch.zeros(d), torch.ones(d), encoder=encoder, embed_dim=12)
    x = torch.rand(3, d)
    e = m(x)
    assert e.shape == (3, 2, 12) and torch.allclose(e.norm(dim=2), torch.ones(3, 2))
    # view B's embedding depends on view B's values only
    y = x.clone()
    y[:, : torch.Size(views[0]).numel()] = 0
    m.eval()
    assert torch.allclose(m(x)[:, 1], m(y)[:, 1]) and not torch.allclose(m(x)[:, 0], m(y)[:, 0])
    if views[0] == (1, 28, 14):  # rows of fashion-halves: the left half is view A
        img = torch.rand(2, 1, 28, 28)
        row = halves(img)
        assert torch.equal(row[:, :392].reshape(2, 1, 28, 14), img[..., :14])
        assert torch.equal(row[:, 392:].reshape(2, 1, 28, 14), img[..., 14:])


def test_two_tower_on_unpaired_data_or_conv_on_flat_views_is_one_error():
    with pytest.raises(ConfigError, match="needs a paired dataset"):
        build_model("two-tower", (1, 8, 8), 10, torch.zeros(1), torch.ones(1))
    with pytest.raises(ConfigError, match="encoder 'conv' needs image views"):
        build_model("two-tower", ((4,), (4,)), 0, torch.zeros(8), torch.ones(8), encoder="conv")
