"""Batched augmentation: identity at zero strength, background kept, mass kept, seeded, used by training."""

import pytest
import torch

from bnnctl.data.augment import AugmentSpec, augment_batch
from bnnctl.training import fit
from helpers import tiny


def blob_batch(low: float = -1.0, high: float = 1.0, n: int = 16) -> torch.Tensor:
    """A bright 8x8 square in the middle of a 28x28 background, n copies."""
    x = torch.full((n, 1, 28, 28), low)
    x[:, :, 10:18, 10:18] = high
    return x


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_zero_strength_is_the_identity():
    x = blob_batch()
    assert torch.equal(augment_batch(x, AugmentSpec(0, 0, 0), gen()), x)


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (0.0, 1.0)])
def test_rotation_and_shift_keep_the_background_and_the_mass(low, high):
    x = blob_batch(low, high)
    y = augment_batch(x, AugmentSpec(rotation_deg=10, shift_px=2, jitter=0, low=low, high=high), gen())
    assert y.shape == x.shape and not torch.equal(y, x)
    assert torch.allclose(y[:, :, :3, :], torch.full_like(y[:, :, :3, :], low), atol=1e-6)  # border stays background
    mass_in, mass_out = (x - low).sum((1, 2, 3)), (y - low).sum((1, 2, 3))
    assert torch.allclose(mass_out, mass_in, rtol=0.05)  # the square moved and turned, it did not fade
    assert y.min() >= low - 1e-6 and y.max() <= high + 1e-6


def test_shift_moves_the_square_by_at_most_the_given_pixels():
    x = blob_batch(0.0, 1.0, n=64)
    y = augment_batch(x, AugmentSpec(rotation_deg=0, shift_px=2, jitter=0, low=0.0, high=1.0), gen())
    cols = torch.arange(28.0)
    centre_x = (y.sum(2).squeeze(1) * cols).sum(1) / y.sum((1, 2, 3))
    assert (centre_x - 13.5).abs().max() <= 2.0 + 1e-4
    assert (centre_x - 13.5).abs().max() > 0.5  # and does move them


def test_jitter_is_an_affine_change_of_intensity_within_the_range():
    x = blob_batch(-1.0, 1.0, n=32) * 0.5  # values -0.5 and 0.5: no clamping at jitter 0.1
    y = augment_batch(x, AugmentSpec(rotation_deg=0, shift_px=0, jitter=0.1), gen())
    bright, dark = y[:, 0, 14, 14], y[:, 0, 0, 0]
    contrast = (bright - dark) / 1.0
    assert ((contrast >= 0.9 - 1e-6) & (contrast <= 1.1 + 1e-6)).all()
    assert contrast.std() > 0.01  # each image its own draw
    assert torch.allclose(y[:, 0, 10:18, 10:18], bright.view(-1, 1, 1).expand(-1, 8, 8))


def test_augmentation_is_seeded():
    x, spec = blob_batch(), AugmentSpec()
    assert torch.equal(augment_batch(x, spec, gen(3)), augment_batch(x, spec, gen(3)))
    assert not torch.equal(augment_batch(x, spec, gen(3)), augment_batch(x, spec, gen(4)))


def test_training_with_augmentation_repeats_and_differs_from_without():
    plain = fit(tiny("train.epochs=1"))
    augmented = fit(tiny("train.epochs=1", "data.augment=true"))
    again = fit(tiny("train.epochs=1", "data.augment=true"))
    assert augmented["final_train_loss"] == again["final_train_loss"]
    assert augmented["final_train_loss"] != plain["final_train_loss"]
