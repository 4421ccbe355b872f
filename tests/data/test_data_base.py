import torch

from trainwise.data import limit_per_class, split_validation
from trainwise.data.digits import load_digits
from trainwise.data.synthetic import make_synthetic


def test_digits_fixed_stratified_split():
    d = load_digits()
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_train.dtype == torch.float32
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert len(d.x_train) + len(d.x_test) == 1797
    assert torch.equal(load_digits().y_test, d.y_test)
    fr_train = torch.bincount(d.y_train) / len(d.y_train)
    fr_test = torch.bincount(d.y_test) / len(d.y_test)
    assert (fr_train - fr_test).abs().max() < 0.01


def test_validation_split_comes_from_training_set_only():
    d = make_synthetic(n_train=200, n_test=50)
    s = split_validation(d, 0.2, seed=0)
    assert len(s.x_val) == 40 and len(s.x_train) == 160
    assert torch.equal(s.x_test, d.x_test)
    # train + val hold exactly the original (image, label) rows, each once
    rows = lambda x, y: sorted(zip(x.flatten(1).tolist(), y.tolist()))  # noqa: E731
    assert rows(torch.cat([s.x_train, s.x_val]), torch.cat([s.y_train, s.y_val])) == rows(d.x_train, d.y_train)


def test_limit_per_class_is_stratified_and_seeded():
    d = make_synthetic(n_train=300, n_test=30, num_classes=3)
    a = limit_per_class(d, 10, seed=1)
    assert torch.equal(torch.bincount(a.y_train), torch.tensor([10, 10, 10]))
    assert torch.equal(a.x_train, limit_per_class(d, 10, seed=1).x_train)
    assert not torch.equal(a.x_train, limit_per_class(d, 10, seed=2).x_train)


def test_class_names_survive_limit_and_split():
    from dataclasses import replace

    d = replace(make_synthetic(n_train=300, n_test=30, num_classes=3), classes=["a", "b", "c"])
    assert limit_per_class(d, 10, seed=1).classes == ["a", "b", "c"]
    assert split_validation(d, 0.2, seed=0).classes == ["a", "b", "c"]
    assert d.to("cpu").classes == ["a", "b", "c"]
    assert load_digits().classes == [str(i) for i in range(10)] and make_synthetic().classes is None
