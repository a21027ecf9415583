"""Run under torch.distributed.run by test_distributed.py: one rank of a DDP run on digits.

Writes ``<out>/rank<r>.json``: a checksum of the weights after every step, and the images this
rank trained on in each epoch (``BatchLoader.last_order``).
"""
import json
import sys

import torch

from tlcore import distributed
from tlcore.config import RunConfig
from tlcore.training.loop import Trainer


class Checked:
    """The trainer's Step, with a checksum of the weights after each update."""

    def __init__(self, step, model):
        self.step, self.model, self.sums = step, model, []

    def __call__(self, x, y):
        out = self.step(x, y)
        self.sums.append(float(sum(p.detach().double().sum() for p in self.model.parameters())))
        return out

    def __getattr__(self, name):
        return getattr(self.step, name)


class Orders:
    def __init__(self):
        self.orders = []

    def on_epoch(self, trainer):
        self.orders.append(trainer.loader.last_order.tolist())


def main(out: str, epochs: int) -> None:
    distributed.init_from_env()
    trainer = Trainer(RunConfig(dataset="digits", epochs=epochs, batch_size=32, lr=0.1, scheduler="step"))
    trainer.setup()
    trainer.step = Checked(trainer.step, trainer.model)
    orders = []
    for epoch in range(1, epochs + 1):
        trainer.train_epoch(epoch)
        orders.append(trainer.loader.last_order.tolist())
        trainer.end_epoch(epoch)
    with open(f"{out}/rank{distributed.rank()}.json", "w") as f:
        json.dump({"sums": trainer.step.sums, "orders": orders, "n": len(trainer.data.train),
                   "history": [e.train_loss for e in trainer.history]}, f)
    distributed.finish()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
