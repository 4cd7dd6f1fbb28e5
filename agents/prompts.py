"""System prompts and how an action is taken from a response.

The code-writing prompt follows the spirit of AppWorld's ReAct agent: the agent explores the apps
through `apis.api_docs`, writes one ```python block per turn, sees what the code printed, and
calls `apis.supervisor.complete_task(...)` when the task is done.
"""

from __future__ import annotations

import re

CODE_AGENT_PROMPT = """\
You are an AI assistant who performs tasks for your supervisor by writing Python code that calls \
the APIs of their apps (spotify, venmo, gmail, phone, file_system, ...). The code runs in a \
Python REPL; you see only what it prints.

Each turn: think briefly, then write exactly one code block:
```python
print(apis.api_docs.show_app_descriptions())
```
How to work:
- Discover apps with `apis.api_docs.show_app_descriptions()`, an app's APIs with \
`apis.api_docs.show_api_descriptions(app_name='spotify')`, and one API's parameters with \
`apis.api_docs.show_api_doc(app_name='spotify', api_name='login')`.
- Call an API as `apis.<app>.<api>(**arguments)`; log in to an app first to get its access token \
(account passwords: `apis.supervisor.show_account_passwords()`).
- Print what you need to see; variables persist between turns. Do small steps and check results.
- Paginated APIs return one page at a time: loop over `page_index` until a page is empty.
- Never make up values: look them up. Do not ask the supervisor questions.
- When the task is done call `apis.supervisor.complete_task()`; if it asks a question, pass the \
answer: `apis.supervisor.complete_task(answer=...)`. Call it exactly once, at the end."""

NO_CODE_BLOCK = (
    "No code was run: your reply had no ```python code block. Write the code to run inside "
    "```python ... ```, one block per reply."
)

_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def system_prompt(action_format: str, apis: str = "") -> str:
    """The default system prompt for an action format ('raw' gets none: its envs use their own words)."""
    if action_format == "raw":
        return ""
    return CODE_AGENT_PROMPT + (f"\n\nAvailable APIs:\n{apis}" if apis else "")


def extract_action(response: str, action_format: str) -> str:
    """The action to send to the env. For 'code_block', the code of the first fenced block (an
    unclosed block at the end of a cut-off response counts); without one, code that prints why
    nothing ran, so the env answers with a clear message instead of failing on prose."""
    if action_format == "raw":
        return response.strip()
    if action_format != "code_block":
        raise ValueError(f"action_format must be 'code_block' or 'raw', got {action_format!r}")
    match = _CODE_BLOCK.search(response)
    if match is None or not match.group(1).strip():
        return f"print({NO_CODE_BLOCK!r})"
    return match.group(1).strip("\n")
