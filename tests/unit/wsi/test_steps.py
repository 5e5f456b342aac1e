"""The slide rules' glue: a mask moved between thumbnail resolutions keeps its place."""

import numpy as np

from rdls.wsi.steps import _resize_mask


def test_a_mask_resampled_to_a_finer_grid_covers_the_same_region():
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    fine = _resize_mask(mask, shape=(32, 48))
    assert fine.shape == (32, 48)
    assert fine.mean() == mask.mean()
    assert fine[8:24, 16:40].all() and not fine[:8].any()
    assert _resize_mask(mask, shape=(9, 13)).shape == (9, 13)  # not a whole multiple
