"""Training: a Problem (loss and gradient), an orientation, a line search, monitors.

    problem = train.Problem(net, losses.MSE(), inputs, targets)
    result = train.Trainer(problem, orientation=train.LBFGS(), line_search=train.ArmijoWolfe()).run(100)
    result.loss, result.iterations, result.history, result.stop_reason
    result = train.Trainer(problem, train.AdamW(), train.FixedStep(1e-3)).run(epochs=5)
    scores = train.evaluate(net, losses.SoftmaxCrossEntropy(), x, labels, metrics=[train.Accuracy()])

See docs/training.md for the tour.
"""
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .constraints import Box, Constraint, NonNegative, Simplex
from .evaluate import Accuracy, Metric, evaluate, predict
from .linesearch import ArmijoWolfe, Backtracking, FixedStep, LineSearch, Quadratic, Trial
from .monitor import Callback, History, Monitor, ProgressBar, Validation
from .orient import Adam, AdamW, GradientDescent, Iterate, Momentum, Nesterov, Orientation
from .paths import CurvedPath, LinePath, OrthantPath, Path, ProjectedPath
from .problem import Problem
from .quasinewton import LBFGS, OWLQN, QQN
from .result import STOP_REASONS, Record, Result
from .schedules import Cosine, LinearWarmup, Schedule, StepDecay
from .trainer import Trainer

__all__ = [
    "Problem", "Trainer", "Result", "Record", "STOP_REASONS",
    "Orientation", "GradientDescent", "Momentum", "Nesterov", "Adam", "AdamW", "LBFGS", "OWLQN", "QQN",
    "LineSearch", "FixedStep", "Backtracking", "ArmijoWolfe", "Quadratic", "Trial",
    "Monitor", "ProgressBar", "History", "Callback", "Validation", "Checkpoint",
    "Constraint", "Box", "NonNegative", "Simplex",
    "Path", "LinePath", "CurvedPath", "ProjectedPath", "OrthantPath", "Iterate",
    "save_checkpoint", "load_checkpoint",
    "predict", "evaluate", "Metric", "Accuracy",
    "Schedule", "StepDecay", "Cosine", "LinearWarmup",
]
