"""A small stateful bank app as an idagym environment: the complete example of adding your own.

The user has a checking and a savings account and owes money to some friends. A task asks the
agent to pay one debt: the bill in the inbox, the loan in the transaction history, or the money
request in the messages. The agent acts with one word a turn:

    balance     show the user's accounts
    inbox       show the bill that arrived        ("inbox bill from carol for 30 dollars")
    history     show the last money received      ("history received 50 dollars from alice")
    messages    show the money request            ("messages dave asks for 20 dollars")
    <name>      pay that friend what the user owes them; only a name on screen can be paid

Which friend sent which record is drawn anew every episode, so the agent must look before it
pays (partial observability), and must pick the record the task is about. A payment ends the
episode. `evaluate` checks the bank's state against the state at the start: the right friend got
the right amount, checking went down by exactly that, and nothing else changed.

Register it by importing this module (one `register_env` call, at the bottom), then e.g.
`gymnasium.make("mybank/Bank-v0")`, or let Gymnasium import it: `gymnasium.make(
"examples.custom_env.bank_env:mybank/Bank-v0")`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from idagym import DigitalEnv, Evaluation, register_env

ENV_ID = "mybank/Bank-v0"
NAMES = ["alice", "bob", "carol", "dave"]
AMOUNTS = [10, 20, 30, 40, 50, 60, 70, 80, 90]
BALANCES = [100, 200, 300]
VIEWS = ["balance", "inbox", "history", "messages"]

# task family -> (instruction, the view that shows whom to pay)
FAMILIES = {
    # each instruction names its view: a tiny model learns to copy a word faster than a mapping
    "bill": ("pay the bill in your inbox", "inbox"),
    "loan": ("pay back the loan in your history", "history"),
    "request": ("send the money a friend asked for in your messages", "messages"),
}
# task ids are "<family>_<variant>" (AppWorld style: the family is the scenario); a variant
# fixes the starting balances
SPLITS = {"train": range(0, 8), "dev": range(8, 10), "test": range(10, 12)}


@dataclass
class Bank:
    """Everything the bank knows; the agent sees only what a command prints."""

    checking: int
    savings: int
    friends: dict[str, int]  # each friend's account balance
    owed: dict[str, int]  # what the user owes each creditor
    records: dict[str, str]  # view -> the creditor that view shows (inbox/history/messages)
    payments: list[tuple[str, int]] = field(default_factory=list)

    def snapshot(self) -> dict:
        return {
            "checking": self.checking,
            "savings": self.savings,
            "friends": dict(self.friends),
            "owed": dict(self.owed),
        }


class BankEnv(DigitalEnv):
    """Pay the right friend from checking; see the module docstring for the commands."""

    def __init__(self, max_turns: int = 4, **kwargs):
        super().__init__(max_turns=max_turns, **kwargs)
        self.bank: Bank | None = None
        self.family = ""
        self._start: dict = {}
        self._screen: set[str] = set()

    # ---- the hooks ---------------------------------------------------------------------------
    def task_ids(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: the bank has {', '.join(SPLITS)}")
        return [f"{family}_{v}" for family in FAMILIES for v in SPLITS[split]]

    def open_task(self, task_id: str, seed: int | None) -> str:
        family, _, variant = task_id.partition("_")
        if family not in FAMILIES or not variant.isdigit():
            raise ValueError(f"unknown task {task_id!r}: expected e.g. 'bill_0'")
        # balances are fixed by the task; creditors and amounts are drawn per episode (reset's seed),
        # so that rollouts of one task differ and guessing a name does not pay
        fixed = zlib.crc32(task_id.encode())
        rng = self.np_random
        creditors = [NAMES[i] for i in rng.permutation(len(NAMES))[:3]]
        amounts = [AMOUNTS[i] for i in rng.permutation(len(AMOUNTS))[:3]]
        self.bank = Bank(
            checking=BALANCES[fixed % 3] + 100,  # always enough to pay any debt
            savings=BALANCES[(fixed // 3) % 3],
            friends={name: BALANCES[(fixed // 9 + i) % 3] for i, name in enumerate(NAMES)},
            owed=dict(zip(creditors, amounts, strict=True)),
            records=dict(zip(["inbox", "history", "messages"], creditors, strict=True)),
        )
        self.family = family
        self._start = self.bank.snapshot()
        self._screen = set()
        return FAMILIES[family][0]

    def execute(self, action: str) -> str:
        bank = self._bank()
        words = action.strip().lower().split()
        word = words[0] if words else ""  # LLM agents may add words after the command
        shown = bank.records
        if word == "balance":
            out = f"balance checking {bank.checking} savings {bank.savings}"
        elif word == "inbox":
            out = f"inbox bill from {shown['inbox']} for {bank.owed[shown['inbox']]} dollars"
        elif word == "history":
            out = f"history received {bank.owed[shown['history']]} dollars from {shown['history']}"
        elif word == "messages":
            out = f"messages {shown['messages']} asks for {bank.owed[shown['messages']]} dollars"
        elif word in NAMES:
            if word not in self._screen:
                return f"error {word} is not on screen open inbox history or messages first"
            amount = bank.owed.pop(word)
            bank.checking -= amount
            bank.friends[word] += amount
            bank.payments.append((word, amount))
            out = f"paid {word} {amount} dollars"
        else:
            return "error unknown command say balance inbox history messages or a name"
        self._screen = set(out.split()) & set(NAMES)
        return out

    def task_completed(self) -> bool:
        return bool(self._bank().payments)

    def evaluate(self) -> Evaluation:
        bank, start = self._bank(), self._start
        target = self.target()
        amount = start["owed"][target]
        # collateral damage: any change besides the one expected payment
        others_same = (
            bank.savings == start["savings"]
            and all(bank.friends[n] == start["friends"][n] for n in NAMES if n != target)
            and all(bank.owed.get(n) == start["owed"][n] for n in start["owed"] if n != target)
        )
        tests = {
            f"{target} received {amount} dollars": bank.friends[target] == start["friends"][target] + amount,
            f"checking went down by exactly {amount}": bank.checking == start["checking"] - amount,
            "nothing else changed (savings, other friends, other debts)": others_same,
        }
        passes = [name for name, ok in tests.items() if ok]
        failures = [name for name, ok in tests.items() if not ok]
        return Evaluation(pass_count=len(passes), num_tests=len(tests), passes=passes, failures=failures)

    def close_task(self) -> None:
        self.bank = None

    # ---- optional hooks ----------------------------------------------------------------------
    def describe_apis(self) -> str:
        return (
            "Say one word a turn. balance: your accounts. inbox: the bill you received. "
            "history: the money you received. messages: the money a friend asked for. "
            "A friend's name (alice, bob, carol, dave): pay what you owe them; only a name on screen."
        )

    def solution(self, task_id: str) -> list[str]:
        # the creditor is drawn per episode, so a solution exists only for the open episode
        if task_id != self.task_id or self.bank is None:
            raise ValueError(f"reset to {task_id!r} first: whom to pay is drawn per episode")
        return [FAMILIES[self.family][1], self.target()]

    def vocabulary(self) -> list[str]:
        words = set(VIEWS) | set(NAMES)
        words |= {str(n) for n in AMOUNTS + BALANCES + [b + 100 for b in BALANCES]}
        for instruction, _ in FAMILIES.values():
            words |= set(instruction.split())
        texts = [
            "bill from for dollars received asks paid checking savings",
            "error is not on screen open first unknown command say or a name",
        ]
        for text in texts:
            words |= set(text.split())
        return sorted(words)

    # ---- helpers ------------------------------------------------------------------------------
    def target(self) -> str:
        """The friend this episode's task asks to pay."""
        return self._bank().records[FAMILIES[self.family][1]]

    def _bank(self) -> Bank:
        if self.bank is None:
            raise RuntimeError("no open task: call reset() first")
        return self.bank


# binary reward: with the test fraction, doing nothing scores 1/3 (nothing else changed) and a
# wrong payment 0, which teaches a young policy not to pay at all
register_env(ENV_ID, BankEnv, reward_mode="binary")
