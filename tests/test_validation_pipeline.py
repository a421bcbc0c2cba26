"""Training's validation runs the recipe's test pipeline (slide windows where the recipe evaluates slide)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.tiny_models import tiny_model

from segattn.engine.components import ComponentError
from segattn.engine.module import SegmentationModule

CROP, STRIDE, ROWS, COLS = (24, 32), (16, 20), (0, 16), (0, 20, 24)  # windows of a 40 x 56 image, by hand


def _confusion(logits: torch.Tensor, mask: torch.Tensor, k: int = 3) -> np.ndarray:
    pred, mask = logits.argmax(1).flatten().numpy(), mask.flatten().numpy()
    keep = mask != 255
    return np.bincount(mask[keep] * k + pred[keep], minlength=k * k).reshape(k, k)


def _validated(model, image, mask, val_inference) -> np.ndarray:
    module = SegmentationModule(model, torch.nn.CrossEntropyLoss(), ["a", "b", "c"], {}, 1, val_inference=val_inference)
    with torch.no_grad():
        module.validation_step({"image": image, "mask": mask}, 0)
    return module.val_confusion.compute().numpy()


def test_slide_validation_is_the_window_average_at_the_label_size():
    model = tiny_model("ccnet_cbam_aligned")  # align_corners=True: the label-size resize must follow it
    torch.manual_seed(0)
    image, mask = torch.randn(2, 3, 40, 56), torch.randint(0, 3, (2, 30, 42))
    mask[:, :3] = 255
    with torch.no_grad():
        total, count = torch.zeros(2, 3, 40, 56), torch.zeros(1, 1, 40, 56)
        for y in ROWS:
            for x in COLS:
                total[..., y:y + CROP[0], x:x + CROP[1]] += model(image[..., y:y + CROP[0], x:x + CROP[1]])
                count[..., y:y + CROP[0], x:x + CROP[1]] += 1
        slide = F.interpolate(total / count, size=(30, 42), mode="bilinear", align_corners=True)
        whole = F.interpolate(model(image), size=(30, 42), mode="bilinear", align_corners=True)
    expected = _confusion(slide, mask)
    assert not np.array_equal(expected, _confusion(whole, mask))  # the two pipelines score differently here
    found = _validated(model, image, mask, {"mode": "slide", "crop_size": list(CROP), "stride": list(STRIDE)})
    assert np.array_equal(found, expected)
    assert np.array_equal(_validated(model, image, mask, {"mode": "whole", "crop_size": None}), _confusion(whole, mask))
    assert np.array_equal(_validated(model, image, mask, None), _confusion(whole, mask))


def test_a_slide_recipe_without_a_window_gets_evaluate_pys_default():
    module = SegmentationModule(torch.nn.Identity(), torch.nn.CrossEntropyLoss(), ["a", "b"], {}, 1,
                                val_inference={"mode": "slide", "crop_size": None, "stride": None})
    assert module.val_inference == {"mode": "slide", "crop_size": [769, 769], "stride": [513, 513]}


@pytest.mark.parametrize("settings, message", [
    ({"mode": "slid"}, r"eval.mode must be whole or slide, got 'slid'"),
    ({"mode": "slide", "crop_size": [769, 0], "stride": [513, 513]}, r"eval.crop_size must be two positive integers"),
    ({"mode": "slide", "crop_size": [64, 64], "stride": [65, 32]}, r"eval.stride must not exceed eval.crop_size"),
])
def test_bad_validation_settings_are_refused(settings, message):
    with pytest.raises(ComponentError, match=message):
        SegmentationModule(torch.nn.Identity(), torch.nn.CrossEntropyLoss(), ["a", "b"], {}, 1, val_inference=settings)
