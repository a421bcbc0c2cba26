"""Properties of whole / sliding-window / multi-scale / flip inference."""
import pytest
import torch
from torch import nn

from segattn.inference.passes import crop_windows, predict_probabilities, slide_logits

K = 3


def conv_model(kernel: int, symmetric: bool = False) -> nn.Module:
    """A toy segmentor: one conv, logits at input size; optionally left-right symmetric kernel."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, K, kernel, padding=kernel // 2)
    if symmetric:
        with torch.no_grad():
            conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
    return conv.eval()


def test_slide_equals_whole_when_crop_covers_image():
    model = conv_model(3)
    image = torch.randn(2, 3, 20, 28)
    whole = predict_probabilities(model, image, "whole", num_classes=K)
    slide = predict_probabilities(model, image, "slide", crop_size=(20, 28), stride=(7, 9), num_classes=K)
    torch.testing.assert_close(slide, whole)


def test_overlapping_windows_average_to_whole_for_pointwise_model():
    # with a 1x1 conv every window predicts the same logits per pixel, so sum / count == whole;
    # this breaks if the count map or the window placement is wrong
    model = conv_model(1)
    image = torch.randn(1, 3, 37, 50)
    with torch.no_grad():
        torch.testing.assert_close(slide_logits(model, image, (16, 24), (10, 13), K), model(image))
        # crop larger than the image: padded, then cropped back
        torch.testing.assert_close(slide_logits(model, image, (64, 64), (32, 32), K), model(image))


@pytest.mark.parametrize("size,crop,stride", [
    ((37, 50), (16, 24), (10, 13)), ((9, 9), (16, 16), (8, 8)), ((33, 40), (11, 8), (11, 8)),
])
def test_windows_cover_every_pixel_and_stay_inside(size, crop, stride):
    h, w = size
    count = torch.zeros(h, w)
    for y1, y2, x1, x2 in crop_windows(h, w, crop, stride):
        assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
        assert y2 - y1 == min(crop[0], h) and x2 - x1 == min(crop[1], w)
        count[y1:y2, x1:x2] += 1
    assert count.min() >= 1


def test_flip_of_flip_equivariant_model_changes_nothing():
    image = torch.randn(1, 3, 16, 21)
    model = conv_model(3, symmetric=True)
    plain = predict_probabilities(model, image, num_classes=K)
    torch.testing.assert_close(predict_probabilities(model, image, flip=True, num_classes=K), plain)
    # a model that is not flip-equivariant does change: the flipped pass is really used
    asym = conv_model(3)
    flipped = predict_probabilities(asym, image, flip=True, num_classes=K)
    assert not torch.allclose(flipped, predict_probabilities(asym, image, num_classes=K))


def test_multiscale_gives_probabilities_at_out_size():
    model = conv_model(3)
    image = torch.randn(2, 3, 24, 32)
    single = predict_probabilities(model, image, num_classes=K)
    torch.testing.assert_close(single, model(image).softmax(1).detach())
    multi = predict_probabilities(model, image, "slide", (16, 16), (8, 8), scales=(0.5, 1.0, 1.5), flip=True,
                           num_classes=K, out_size=(12, 40))
    assert multi.shape == (2, K, 12, 40)
    torch.testing.assert_close(multi.sum(1), torch.ones(2, 12, 40))
    torch.testing.assert_close(predict_probabilities(model, image, scales=(1.0, 1.0), num_classes=K), single)


def test_class_count_mismatch_and_bad_mode_are_clear_errors():
    model, image = conv_model(1), torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="model predicts 3 classes, the dataset has 19"):
        predict_probabilities(model, image, num_classes=19)
    with pytest.raises(ValueError, match="'whole' or 'slide'"):
        predict_probabilities(model, image, "tiles", num_classes=K)
    with pytest.raises(ValueError, match="needs crop_size and stride"):
        predict_probabilities(model, image, "slide", num_classes=K)


def test_single_pass_resizes_logits_like_training_validation():
    # training validation: argmax of the logits resized bilinearly to the label size
    model, image = conv_model(3), torch.randn(1, 3, 16, 24)
    with torch.no_grad():
        resized = torch.nn.functional.interpolate(model(image), size=(33, 47), mode="bilinear", align_corners=False)
    torch.testing.assert_close(predict_probabilities(model, image, num_classes=K, out_size=(33, 47)), resized.softmax(1))


def test_slide_scales_and_flip_equal_a_direct_computation_with_a_position_dependent_model():
    """mean over scales and flips of softmax(resize(windows(resize(x)))), the windows placed and summed by hand."""
    from helpers.position_model import PositionModel
    from helpers.reference_passes import direct_probabilities

    model, image = PositionModel().eval(), torch.randn(2, 3, 20, 34)
    got = predict_probabilities(model, image, "slide", crop_size=(12, 16), stride=(8, 10), scales=(0.5, 1.0),
                                flip=True, num_classes=3, out_size=(22, 30))
    plan = [((10, 17), (12, 17), [0], [0, 1]), ((20, 34), (20, 34), [0, 8], [0, 10, 18])]  # scales 0.5, 1
    expected = direct_probabilities(model, image, (12, 16), plan, (22, 30), 3)
    torch.testing.assert_close(got, expected)
    one_scale = predict_probabilities(model, image, "slide", crop_size=(12, 16), stride=(8, 10), flip=True,
                                      num_classes=3, out_size=(22, 30))
    assert (one_scale - got).abs().max() > 1e-2  # the 0.5 scale counts
