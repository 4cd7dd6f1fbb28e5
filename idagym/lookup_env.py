"""Lookup: a tiny multi-turn, partially observable digital world in which RL can be seen to work.

The task says "<verb> the person named in the memo". The agent answers one word a turn:
`read` shows the memo ("memo says <name>"); saying a name acts on that person and ends the
episode (reward 1 if it is the memo's name). A name said before reading is refused ("error memo
unknown"), so guessing wins no more than chance and only read-then-act solves the task reliably.
The memo's name is drawn per episode from the reset seed, so the K rollouts of one task differ
(with one fixed name per task whole groups would score alike and give no learning signal).

Every word the world and a good agent use is in `vocabulary()`, for a word-level tokenizer.
"""

from __future__ import annotations

from idagym.core import DigitalEnv, Evaluation

VERBS = ["pay", "call", "email", "invite", "thank", "visit", "hire", "greet"]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
WORDS = ["task", "the", "person", "named", "in", "memo", "actions", "read", "or", "a", "name",
         "says", "error", "unknown", "done", "with", "not", "understood"]


class LookupEnv(DigitalEnv):
    """Read the memo, then act on the person it names (a tiny world where learning shows in seconds).

    Tasks are verbs; splits share them (each episode draws its own hidden name, so dev/test
    episodes are fresh)."""

    def __init__(self, *, num_names: int = 4, max_turns: int = 3, split: str = "train", **kwargs):
        if not 2 <= num_names <= len(NAMES):
            raise ValueError(f"num_names must be in 2..{len(NAMES)}, got {num_names}")
        super().__init__(split=split, max_turns=max_turns, reward_mode="binary", **kwargs)
        self.names = NAMES[:num_names]
        self._verb = self._name = ""
        self._read = False
        self._chosen: str | None = None

    def task_ids(self, split: str) -> list[str]:
        if split not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {split!r}: Lookup has train, dev and test")
        return list(VERBS)

    def open_task(self, task_id: str, seed: int | None) -> str:
        if task_id not in VERBS:
            raise ValueError(f"unknown Lookup task {task_id!r}; tasks are {', '.join(VERBS)}")
        # the hidden name comes from the reset-seeded generator: one fresh draw per episode
        self._verb, self._name = task_id, self.names[int(self.np_random.integers(len(self.names)))]
        self._read, self._chosen = False, None
        return f"task {task_id} the person named in the memo actions read or a name"

    def execute(self, action: str) -> str:
        words = action.strip().lower().split()
        word = words[0] if words else ""
        if word == "read":
            self._read = True
            return f"memo says {self._name}"
        if word in self.names:
            if not self._read:
                return "error memo unknown"
            self._chosen = word
            return f"done {self._verb} {word}"
        return "error not understood"

    def task_completed(self) -> bool:
        return self._chosen is not None

    def evaluate(self) -> Evaluation:
        ok = self._chosen == self._name
        label = f"{self._verb} {self._name}"
        return Evaluation(int(ok), 1, passes=[label] if ok else [], failures=[] if ok else [label])

    def describe_apis(self) -> str:
        return "read: show the memo; <name> (" + ", ".join(self.names) + "): act on that person and finish"

    def solution(self, task_id: str) -> list[str]:
        if task_id != self.task_id or not self._name:
            raise ValueError("Lookup's solution depends on the episode's hidden name: reset to this task first")
        return ["read", self._name]

    def vocabulary(self) -> list[str]:
        return list(dict.fromkeys(WORDS + VERBS + NAMES))
