import pytest
import torch

from trainwise.errors import ConfigError
from trainwise.models import MODELS, build_model


@pytest.mark.parametrize("name", sorted(MODELS))
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
