"""RL algorithms for interactive agents (installed as `idagym.algorithms`).

Each algorithm file holds only its advantage and its loss; `trainer.Trainer` does the rest.
Importing this package registers loop, rloo, grpo, ppo and sft (the supervised warm start).
"""

from idagym.algorithms import grpo, loop, ppo, rloo, sft  # noqa: F401  (register)
from idagym.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    ModelOutputs,
    ValueHead,
    make_algorithm,
    register_algorithm,
)

__all__ = ["ALGORITHMS", "Algorithm", "ModelOutputs", "ValueHead", "make_algorithm", "register_algorithm"]
