"""The **Algorithm** component: optimizers (in-place NumPy updates) and learning-rate schedulers.

    opt = dl.optim.Adam(model.parameters(), lr=1e-3)
    loss.backward(); opt.step(); opt.zero_grad()
"""

from dlbasics.optim import lr_scheduler, schedules
from dlbasics.optim.adadelta import Adadelta
from dlbasics.optim.adagrad import Adagrad
from dlbasics.optim.adam import Adam, AdamW
from dlbasics.optim.groups import NO_DECAY, param_groups
from dlbasics.optim.optimizer import OPTIMIZERS, Optimizer
from dlbasics.optim.rmsprop import RMSprop
from dlbasics.optim.sgd import SGD

__all__ = ["NO_DECAY", "OPTIMIZERS", "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop",
           "lr_scheduler", "param_groups", "schedules"]
