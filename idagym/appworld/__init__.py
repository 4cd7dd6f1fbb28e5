"""AppWorld in idagym: the environment, its sandbox, the apps, the scorer, the server, the task suite.

Threat model. The agent's code is adversarial: an RL agent learns whatever raises its reward, so
anything its code can reach that moves the reward without doing the task will be found. The reward
is therefore kept out of its reach by construction, with the trusted and untrusted sides in
separate processes and modules:

- untrusted: `sandbox`, the only place agent code runs. A fresh process forked for every episode
  from a clean parent and killed at its end (nothing leaks into the next episode). It holds no
  ground truth and no databases, and is confined by the kernel (Landlock) to reading the Python
  installation: no task files, no writes, no programs, no network, no signals to other processes.
  Its only ways out are two pipes of JSON: actions and their output, and API requests.
- trusted: `apps_host` holds the task's databases and answers only public app APIs, so app state
  changes only through the apps' own code; once the sandbox is killed it saves the end state and
  `scorer` computes the reward there with AppWorld's own evaluator (no agent code ever ran in that
  process); `worker` forks these from a clean parent and enforces time limits; `env` is the Gymnasium environment; `server`
  serves the same worker over HTTP (`idagym serve`); `tasks` builds the offline task suite.

What stays readable is installed Python source, AppWorld's apps and idagym included (so also the
built-in suite's generator, `tasks/templates.py`: templates, never a task's parameters, answer or
tests, which live in the task data).

Out of scope: bugs in the Linux kernel or in AppWorld's app code (a public API that itself lets
a user do more than it should is part of the world the agent acts in). Where the kernel has no
Landlock (`env.isolation == "audit-hook"`), a Python audit hook is the only fence around files
and processes; it stops ordinary code but not code that corrupts the interpreter's memory.
"""

from typing import Any

__all__ = ["AppWorldEnv"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m idagym.appworld.worker` does not import the worker twice.
    if name == "AppWorldEnv":
        from idagym.appworld.env import AppWorldEnv

        return AppWorldEnv
    raise AttributeError(f"module 'idagym.appworld' has no attribute {name!r}")
