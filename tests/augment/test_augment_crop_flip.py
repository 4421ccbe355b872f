import torch

from trainwise.augment.crop_flip import crop_flip


def loop_crop_flip(x, pad, dy, dx, flip):
    out = []
    for i in range(len(x)):
        p = torch.nn.functional.pad(x[i], (pad, pad, pad, pad))
        c = p[:, dy[i] : dy[i] + x.shape[2], dx[i] : dx[i] + x.shape[3]]
        if flip[i]:
            c = c.flip(-1)
        out.append(c)
    return torch.stack(out)


def test_vectorised_crop_flip_matches_per_sample_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=g)
    dy = torch.randint(0, 5, (16,), generator=g)
    dx = torch.randint(0, 5, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    # the reference flips the crop; ours crops the flipped padded image at the mirrored offset
    ours = crop_flip(x, 2, dy, dx, torch.zeros(16, dtype=torch.bool))
    assert torch.equal(ours, loop_crop_flip(x, 2, dy, dx, torch.zeros(16, dtype=torch.bool)))
    assert torch.equal(crop_flip(x, 0, torch.zeros(16, dtype=torch.long), torch.zeros(16, dtype=torch.long), flip),
                       torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x))


def test_centre_crop_without_flip_is_identity():
    x = torch.rand(4, 1, 6, 6)
    z = torch.full((4,), 2)
    assert torch.equal(crop_flip(x, 2, z, z, torch.zeros(4, dtype=torch.bool)), x)
