"""A 3-class toy segmentor whose logits depend on the pixels and on the position (rows and columns differently),
so a pass that swaps axes, misplaces a window, drops a scale or forgets to flip back changes the result."""
import torch


class PositionModel(torch.nn.Module):
    num_classes, align_corners = 3, False

    def forward(self, x):
        b, _, h, w = x.shape
        rows = torch.linspace(0, 1, h).view(1, 1, h, 1).expand(b, 1, h, w)
        cols = torch.linspace(0, 2, w).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([x[:, :1] * 3, rows * 4 - x[:, 1:2], cols + x[:, 2:3]], 1)
