"""What every training recipe here shares: the weight EMA that gets evaluated and exported, and
checkpoints written atomically (a run killed mid-write keeps its previous checkpoint)."""

import copy
import math
import os

import torch


class EMA:
    """Exponential moving average of the weights, with a warm-up: the decay grows as
    `decay * (1 - exp(-updates / tau))`, so early averages are not dominated by the random
    initialisation. Integer buffers (e.g. BatchNorm's batch counter) are left alone."""

    def __init__(self, model, decay, tau):
        self.model = copy.deepcopy(model).eval()
        self.decay, self.tau, self.updates = decay, tau, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)


def save_atomic(obj, path):
    """torch.save to `path` through a temporary sibling and a rename."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
