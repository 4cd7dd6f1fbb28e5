"""idagym: Gymnasium environments and RL algorithms for interactive LLM agents in digital worlds."""

import gymnasium as gym

from idagym.core import (
    AnyText,
    DigitalEnv,
    EnvFailure,
    Evaluation,
    idagym_env_ids,
    register_env,
    truncate_text,
)

__all__ = [
    "AnyText",
    "DigitalEnv",
    "EnvFailure",
    "Evaluation",
    "idagym_env_ids",
    "register_env",
    "truncate_text",
]
__version__ = "0.1.0"

# Built-in environments; guarded so that re-importing the package does not re-register.
_BUILTIN = {
    "idagym/AppWorld-v0": "idagym.appworld:AppWorldEnv",
    "idagym/Lookup-v0": "idagym.lookup_env:LookupEnv",
}
for _env_id, _entry_point in _BUILTIN.items():
    if _env_id not in gym.registry:
        register_env(_env_id, _entry_point)
