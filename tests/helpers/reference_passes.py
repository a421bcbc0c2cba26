"""Test-time passes written out by hand: the independent reference for slide / multi-scale / flip inference."""
import torch
import torch.nn.functional as F


def direct_probabilities(model, image, crop, plan, out_size, num_classes):
    """Mean over the ``plan``'s scales and both flips of ``softmax(resize(windows(resize(image))))``.

    ``plan``: per scale ``(size, padded, rows, cols)``: the resized image size, its zero-padded size and the
    window starts on rows and columns, all worked out by hand; windows are ``crop`` large, their logits summed
    and divided by the count of windows over each pixel.
    """
    b, full = image.shape[0], tuple(image.shape[-2:])
    expected = torch.zeros(b, num_classes, *out_size)
    with torch.no_grad():
        for size, padded, rows, cols in plan:
            scaled = F.interpolate(image, size=size, mode="bilinear", align_corners=False) if size != full else image
            for flip in (False, True):
                x = F.pad(scaled.flip(-1) if flip else scaled, (0, padded[1] - size[1], 0, padded[0] - size[0]))
                total, count = torch.zeros(b, num_classes, *padded), torch.zeros(1, 1, *padded)
                for y0 in rows:
                    for x0 in cols:
                        total[..., y0:y0 + crop[0], x0:x0 + crop[1]] += model(x[..., y0:y0 + crop[0], x0:x0 + crop[1]])
                        count[..., y0:y0 + crop[0], x0:x0 + crop[1]] += 1
                logits = (total / count)[..., :size[0], :size[1]]
                logits = logits.flip(-1) if flip else logits
                expected += F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False).softmax(1)
    return expected / (2 * len(plan))
