"""The one trainer every algorithm shares (it never asks which algorithm it runs).

  for iteration:  collect K rollouts of B tasks  ->  algorithm.compute_advantages
                  -> epochs x shuffled minibatches: forward, algorithm.loss, backward, clip, step
                  -> log, evaluate now and then, checkpoint

What an algorithm needs besides advantages and a loss it declares: `needs_critic` (a value head
on the last hidden state, old values filled in before advantages) and `needs_reference`
(log-probs under the initial policy; with LoRA that is the base model with the adapter off).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import torch
from tianshou.data import Batch
from torch import nn

from idagym.agents.models import save_model, save_policy_settings, saves_merged
from idagym.agents.scoring import next_token_logp
from idagym.algorithms import functional as F
from idagym.algorithms.base import ModelOutputs, ValueHead, make_algorithm
from idagym.algorithms.ranks import Ranks, check_same_world
from idagym.behaviour import behaviour
from idagym.buffer import RolloutBuffer, Trajectory
from idagym.config import Config, to_yaml
from idagym.evaluation import EvalCache, model_fingerprint, summarize, wilson_interval
from idagym.run import Run


class Collector(Protocol):
    def collect(self, task_ids: list[str], group_size: int, seed: int) -> list[Trajectory]: ...


def _seed_for(*parts: int) -> int:
    """A per-(seed, iteration, purpose) seed, so a resumed run draws what the killed one would have."""
    return int(np.random.default_rng(list(parts)).integers(2**31 - 1))


def _is_peft(model: nn.Module) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


class Trainer:
    """Trains `model` (the policy's model) with the configured algorithm on trajectories from `collector`."""

    def __init__(
        self,
        cfg: Config,
        model: nn.Module,
        collector: Collector,
        train_tasks: list[str],
        eval_tasks: list[str] | None = None,
        *,
        pad_token_id: int = 0,
        run: Run | None = None,
        log: Callable[[str], None] = print,
        train_source: Collector | None = None,
        ranks: Ranks | None = None,
    ):
        self.cfg, self.model, self.collector, self.run, self.log = cfg, model, collector, run, log
        # where training trajectories come from (demonstrations for sft); evaluation always rolls out
        self.train_source = train_source or collector
        self.train_tasks, self.eval_tasks = list(train_tasks), list(eval_tasks or [])
        self.pad_token_id = pad_token_id
        # which task data the env serves (an evaluation's cache key): AppWorld's suite folder, if any
        env = collector.envs[0].unwrapped if getattr(collector, "envs", None) else None
        self.data_id = str(getattr(env, "root", "")) if env is not None else ""
        self.difficulty_fn = getattr(env, "task_difficulty", None)
        self.algo = make_algorithm(cfg.algorithm)
        # the model decides the device; the buffer and the advantages stay on the host
        self.device = next(model.parameters()).device
        self.ranks = ranks or Ranks(self.device, cfg.train.sharding)
        # rollouts sampled outside this model (a vLLM server): measure how far their log-probs are
        self.samples_elsewhere = cfg.policy.backend != "hf"
        if min(cfg.train.tasks_per_iteration, len(self.train_tasks)) % self.ranks.world:
            raise ValueError(f"{len(self.train_tasks)} training tasks cannot be shared by {self.ranks.world} processes in "
                             f"whole groups: make train.tasks_per_iteration at most that, and a multiple of {self.ranks.world}")
        self.epochs = cfg.train.epochs or self.algo.epochs_default
        self.temperature = cfg.policy.temperature or 1.0
        self.critic: ValueHead | None = None
        if self.algo.needs_critic:
            hidden = model.config.hidden_size
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.train.seed)
                self.critic = ValueHead(hidden, cfg.algorithm.critic_width, cfg.algorithm.critic_layers).to(self.device)
        # without LoRA the reference is a frozen copy of the initial weights (cheap only for small models)
        self.reference: nn.Module | None = None
        if self.algo.needs_reference and not _is_peft(model):
            self.reference = copy.deepcopy(model).requires_grad_(False)
        if self.ranks.sharded and saves_merged(model):
            raise ValueError("train.sharding=fsdp2 cannot save LoRA on a base that is not a local folder (it is saved "
                             "merged): give model.name as a folder, or use train.sharding=none")
        # the loss pass runs through these (DDP wrappers, or the policy sharded in place); no-grad passes do not
        self.loss_model = self.ranks.wrap(model, shard=True)
        self.loss_critic = self.ranks.wrap(self.critic, shard=True) if self.critic is not None else None
        # what the optimiser trains, as one module: gathered together, checkpointed together
        self.trained = nn.ModuleDict({"policy": model, **({"critic": self.critic} if self.critic is not None else {})})
        self.params = [p for p in model.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": self.params}]
        if self.critic is not None:
            groups.append({"params": list(self.critic.parameters()), "lr": cfg.train.critic_lr or cfg.train.lr})
        self.optimizer = torch.optim.AdamW(
            groups, lr=cfg.train.lr, betas=tuple(cfg.train.adam_betas), weight_decay=cfg.train.weight_decay
        )
        self.iteration = 0  # next iteration to run

    # ---- the model pass ---------------------------------------------------------------------------
    def forward(self, mb: Batch, model: nn.Module | None = None, critic: nn.Module | None = None) -> ModelOutputs:
        """Log-probs (at the sampling temperature) and entropy of the generated tokens, values if a critic.

        Logits are computed only where a generated token is predicted (`logits_to_keep` mask), so the
        [N, T, vocab] tensor of a plain LM step is never built; scored with
        `agents.scoring.next_token_logp`, the sampling rule.
        """
        model, critic = model or self.model, critic or self.critic
        ids, mask = mb.input_ids, mb.loss_mask  # on the model's device (`_on_device`)
        keep = torch.zeros_like(mask, dtype=torch.bool)
        keep[:, :-1] = mask[:, 1:] > 0  # logits at t-1 score token t
        out = model(
            input_ids=ids,
            attention_mask=mb.attention_mask,
            logits_to_keep=keep,
            output_hidden_states=critic is not None,
            use_cache=False,
        )
        logp_all = next_token_logp(out.logits, self.temperature)  # [num_generated, V]
        targets = ids[:, 1:][keep[:, :-1]]
        logprobs = torch.zeros(mask.shape, dtype=torch.float32, device=ids.device)
        logprobs[:, 1:][keep[:, :-1]] = logp_all.gather(-1, targets[:, None]).squeeze(-1)
        # the entropy keeps its graph only when a bonus is trained on (it costs a [generated, V] tensor)
        ent_fn = torch.enable_grad if self.cfg.train.entropy_coef > 0 and torch.is_grad_enabled() else torch.no_grad
        with ent_fn():
            entropy = torch.zeros(mask.shape, dtype=torch.float32, device=ids.device)
            entropy[:, 1:][keep[:, :-1]] = -(logp_all.exp() * logp_all).sum(-1)
        # the value head stays in fp32 whatever the model's dtype
        values = critic(out.hidden_states[-1].float()) * mask if critic is not None else None
        return ModelOutputs(logprobs=logprobs * mask, entropy=entropy, values=values)

    @torch.no_grad()
    def _prepare(self, batch: Batch) -> Batch:
        """Fill what the algorithm declared it needs (old values, reference log-probs), in chunks."""
        size = self.cfg.train.minibatch_size
        if self.critic is not None:
            batch.old_values = torch.cat([self.forward(self._on_device(mb)).values.cpu() for mb in _chunks(batch, size)])
        if self.algo.needs_reference:
            ref = []
            for mb in map(self._on_device, _chunks(batch, size)):
                if self.reference is not None:
                    ref.append(self.forward(mb, self.reference).logprobs.cpu())
                else:
                    with self.model.disable_adapter():  # LoRA: the base model is the reference
                        ref.append(self.forward(mb).logprobs.cpu())
            batch.ref_logprobs = torch.cat(ref)
        return batch

    # ---- one update -------------------------------------------------------------------------------
    def update(self, trajectories: list[Trajectory], iteration: int = 0) -> dict[str, float]:
        """Advantages, then epochs x minibatches of loss / clip / step. Returns averaged metrics.

        With several ranks each updates on its own trajectories, minibatches of minibatch_size / world
        trajectories; the number of minibatches, skipping and the KL stop are agreed on by all ranks,
        and each rank's loss is weighted by its share of what the loss averages over (tokens or
        trajectories), so the averaged gradient is that of the ranks' minibatches taken together.
        """
        with self.ranks.full_weights(self.trained):  # every rank enters, with trajectories or without
            prepared = self._prepare(RolloutBuffer(trajectories).to_batch(self.pad_token_id)) if trajectories else None
            batch = self.algo.compute_advantages(prepared) if prepared is not None else Batch()
            if self.algo.whitens_advantages:
                self._whiten_over_ranks(batch)
            counts = {"steps": 0, "skipped_steps": 0, "trained_trajectories": int(self.ranks.reduce(len(batch), "sum"))}
            if self.samples_elsewhere or self.cfg.algorithm.tis_cap is not None:
                counts.update(self._correct_offpolicy(batch))
        stats: dict[str, list[float]] = defaultdict(list)
        if self.critic is not None:  # every rank reduces, whether or not it has trajectories
            ev = float(F.explained_variance(batch.old_values, batch.returns, batch.loss_mask)) if len(batch) else math.nan
            counts["explained_variance"] = self.ranks.reduce(ev, "nanmean")
        gen = torch.Generator().manual_seed(_seed_for(self.cfg.train.seed, iteration, 1))
        size = max(1, self.cfg.train.minibatch_size // self.ranks.world)
        stop = False
        for _ in range(self.epochs):
            minibatches = list(RolloutBuffer.minibatches(batch, size, gen)) if len(batch) else []
            for j in range(int(self.ranks.reduce(len(minibatches), "max"))):
                mb = minibatches[j] if j < len(minibatches) else None
                # nothing to learn: stepping Adam on zero gradients still moves weights
                learns = mb is not None and bool((mb.advantages * mb.loss_mask).abs().sum() > 0)
                if not self.ranks.reduce(float(learns), "max"):
                    counts["skipped_steps"] += 1
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                # DDP averages the ranks' gradients: weight each rank's mean loss by its share
                weight = self.algo.loss_weight(mb) if mb is not None else 0.0
                share = self.ranks.world * weight / self.ranks.reduce(weight, "sum") if self.ranks.world > 1 else 1.0
                if learns:
                    mb = self._on_device(mb)
                    out = self.forward(mb, self.loss_model, self.loss_critic)
                    loss, metrics = self.algo.loss(out, mb)
                    entropy = F.masked_mean(out.entropy, mb.loss_mask)
                    if self.cfg.train.entropy_coef > 0:
                        loss = loss - self.cfg.train.entropy_coef * entropy
                else:  # another rank learns: join its all-reduce with zero gradients
                    out = self.forward(self._on_device(self._idle_batch()), self.loss_model, self.loss_critic)
                    loss = out.logprobs.sum() * 0.0 + (out.values.sum() * 0.0 if out.values is not None else 0.0)
                (loss * share).backward()
                clip = self.cfg.train.grad_clip or math.inf
                grad_norm = nn.utils.clip_grad_norm_([p for group in self.optimizer.param_groups for p in group["params"]], clip)
                self.optimizer.step()
                counts["steps"] += 1
                kl = F.approx_kl(out.logprobs.detach(), mb.old_logprobs, mb.loss_mask).item() if learns else 0.0
                kl = self.ranks.reduce(kl, "sum") / self.ranks.reduce(float(learns), "sum")
                if learns:
                    for key, value in {**metrics, "loss": loss.item(), "entropy": entropy.item(), "approx_kl": kl,
                                       "grad_norm": float(grad_norm)}.items():
                        stats[key].append(value)
                if self.cfg.train.kl_threshold is not None and kl > self.cfg.train.kl_threshold:
                    stop = True  # the policy moved too far from the data: stop this iteration
                    break
            if stop:
                break
        counts["kl_early_stop"] = int(stop)
        merged: dict[str, list[float]] = defaultdict(list)
        for rank_stats in self.ranks.gather([dict(stats)]):
            for key, values in rank_stats.items():
                merged[key].extend(values)
        return {**{k: float(np.mean(v)) for k, v in merged.items()}, **counts}

    @torch.no_grad()
    def _correct_offpolicy(self, batch: Batch) -> dict[str, float]:
        """The sampler's behaviour log-probs against the trainer's on the same tokens, before the
        update; with `algorithm.tis_cap`, truncated importance weights on the advantages, and the
        trainer's log-probs as the old policy of the clipped ratio."""
        nan = {"logp_mismatch_mean": math.nan, "logp_mismatch_max": 0.0, "logp_mismatch_ratio_out": math.nan}
        if len(batch):
            size = self.cfg.train.minibatch_size
            trainer_logp = torch.cat([self.forward(self._on_device(mb)).logprobs.cpu() for mb in _chunks(batch, size)])
            measured = F.logprob_mismatch(trainer_logp, batch.old_logprobs, batch.loss_mask)
            cap = self.cfg.algorithm.tis_cap
            if cap is not None:
                batch.advantages = batch.advantages * F.truncated_importance_weights(trainer_logp, batch.old_logprobs,
                                                                                     batch.loss_mask, cap)
                batch.old_logprobs = trainer_logp * batch.loss_mask
        else:
            measured = nan
        return {k: self.ranks.reduce(v, "max" if k.endswith("max") else "nanmean") for k, v in measured.items()}

    def _hand_over_weights(self) -> None:
        """A backend outside this process (a vLLM server) samples with the weights just trained."""
        backend = getattr(getattr(self.collector, "policy", None), "backend", None)
        if hasattr(backend, "load_weights"):
            backend.load_weights(self.model)

    def _idle_batch(self) -> Batch:
        """Two pad tokens, the second one 'generated': a forward pass that touches every parameter."""
        ids = torch.full((1, 2), self.pad_token_id, dtype=torch.long, device="cpu")
        return Batch(input_ids=ids, attention_mask=torch.ones_like(ids), loss_mask=torch.tensor([[0.0, 1.0]], device="cpu"))

    def _whiten_over_ranks(self, batch: Batch) -> None:
        """Advantages to mean 0 / std 1 over every rank's generated tokens; every rank joins the sums,
        with trajectories or without."""
        empty = torch.zeros(0, device="cpu")
        adv, mask = (batch.advantages, batch.loss_mask) if len(batch) else (empty, empty)
        whitened = F.masked_whiten(adv, mask, total=lambda s: torch.tensor(self.ranks.reduce(float(s), "sum"), device=s.device))
        if len(batch):
            batch.advantages = whitened

    def _on_device(self, mb: Batch) -> Batch:
        """The minibatch's tensors on the model's device (the same tensors when already there)."""
        return mb.apply_values_transform(lambda value: value.to(self.device) if torch.is_tensor(value) else value)

    # ---- evaluation -------------------------------------------------------------------------------
    def evaluate(self, completed: int, phase: str) -> dict[str, Any] | None:
        """Success on the eval tasks (episodes drawn with their own seeds); logged to eval.jsonl."""
        if not self.eval_tasks:
            return None
        done = self.run.evals() if self.run is not None else []
        done = self.ranks.broadcast([e for e in done if e.get("iteration") == completed and e.get("phase") == phase])
        if done:
            return done[-1]  # done before a kill: never twice
        tcfg = self.cfg.train
        tasks = self.eval_tasks[: tcfg.eval_tasks] if tcfg.eval_tasks else self.eval_tasks
        seed = _seed_for(tcfg.seed, 2)  # the same episodes at every evaluation: figures compare pairwise
        cache, key = None, None
        if tcfg.eval_cache:
            cache = EvalCache()
            weights = model_fingerprint(self.ranks.full_state_dict(self.model))
            key = cache.key(model=weights, policy=dataclasses.asdict(self.cfg.policy), world=self.ranks.world,
                            env=tcfg.env, env_kwargs=dict(self.cfg.collector.env_kwargs), data=self.data_id,
                            split=tcfg.eval_split, tasks=tasks, episodes=tcfg.eval_episodes_per_task, seed=seed,
                            num_envs=self.cfg.collector.num_envs)
        measured = self.ranks.broadcast(cache.get(key) if cache is not None and key is not None else None)
        if measured is None:
            t0 = time.time()
            with self.ranks.full_weights(self.trained):
                trajs = self.collector.collect(self.ranks.shard(tasks), tcfg.eval_episodes_per_task, seed)
            trajs = self.ranks.gather(trajs)
            report = summarize(trajs, difficulty_fn=self.difficulty_fn)
            measured = {"split": tcfg.eval_split, "episodes": len(trajs),
                        "success_rate": float(np.mean([t.success for t in trajs])),
                        "success_ci95": list(wilson_interval(sum(t.success for t in trajs), len(trajs))),
                        "reward_mean": float(np.mean([t.reward for t in trajs])),
                        "tgc": report["tgc"], "tgc_ci95": list(report["tgc_interval"]),
                        "sgc": report["sgc"], "sgc_ci95": list(report["sgc_interval"]),
                        "scenarios": report["num_scenarios"], "seconds": round(time.time() - t0, 2),
                        "tgc_by_difficulty": {k: d["tgc"] for k, d in report["by_difficulty"].items()},
                        "behaviour": report["behaviour"]}
            if cache is not None and key is not None and self.ranks.is_main:
                cache.put(key, measured)
        else:
            measured = {**measured, "cached": True}
        row = {"iteration": completed, "phase": phase, **measured}
        if self.run is not None:
            self.run.log_eval(row)
        lo, hi = row["success_ci95"]
        self.log(f"eval ({phase}, {completed} iterations): success {row['success_rate']:.3f} "
                 f"[95% CI {lo:.3f}-{hi:.3f}] on {row['episodes']} episodes" + (" (cached)" if row.get("cached") else ""))
        return row

    # ---- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs. Sharded, every rank calls it and rank 0's is complete."""
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        weights = self.ranks.full_state_dict(self.model)
        return {
            "next_iteration": self.iteration,
            "trainable": {n: weights[n].detach().clone() for n in names if n in weights},
            "critic": self.ranks.full_state_dict(self.critic) if self.critic is not None else None,
            # a full-weights reference is the *initial* policy: a resumed run must not re-copy it
            "reference": self.reference.state_dict() if self.reference is not None else None,
            "optimizer": self._optimizer_state(),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
            "config": to_yaml(self.cfg),
            "world_size": self.ranks.world,
            "sharded": self.ranks.sharded,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_same_world(state, self.ranks.world)
        if bool(state.get("sharded", False)) != self.ranks.sharded:
            raise ValueError(f"this run was trained with train.sharding={'fsdp2' if state.get('sharded') else 'none'}: "
                             "resume it with that")
        self.ranks.load_full_state_dict(self.model, state["trainable"], strict=False)
        if self.critic is not None and state.get("critic") is not None:
            self.ranks.load_full_state_dict(self.critic, state["critic"])
        if self.reference is not None and state.get("reference") is not None:
            self.reference.load_state_dict(state["reference"])
        if self.ranks.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(self.trained, self.optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        self.iteration = int(state["next_iteration"])
        self._hand_over_weights()

    def _optimizer_state(self) -> dict[str, Any]:
        if not self.ranks.sharded:
            return self.optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(self.trained, self.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def save_model(self, folder: Any) -> None:
        """The trained model for later use: the LoRA adapter, or all weights (plus the value head), and
        the policy settings and env it was trained with, so that `idagym eval` runs it as trained.
        Every rank calls it (sharded weights are gathered); rank 0 writes."""
        weights = self.ranks.full_state_dict(self.model) if self.ranks.sharded else None
        critic = self.ranks.full_state_dict(self.critic) if self.critic is not None else None
        if not self.ranks.is_main:
            return
        save_model(self.model, self.collector.policy.tokenizer, folder, state_dict=weights)
        # the settings that decide the samples; a server address is the run's, not the policy's
        policy = {k: v for k, v in dataclasses.asdict(self.cfg.policy).items() if k != "vllm_url"}
        save_policy_settings(folder, policy, self.cfg.train.env, dict(self.cfg.collector.env_kwargs), dtype=self.cfg.model.dtype)
        if critic is not None:
            torch.save(critic, f"{folder}/value_head.pt")

    # ---- the loop ---------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Run (or continue) the configured iterations; returns the before/after evaluations."""
        tcfg = self.cfg.train
        total = tcfg.iterations
        before = self.evaluate(0, "before") if tcfg.eval_before and self.iteration == 0 else None
        bar = _progress(range(self.iteration, total), tcfg.progress and self.ranks.is_main, total=total, initial=self.iteration)
        for it in bar:
            row = self.step(it)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(reward=f"{row['reward_mean']:.2f}", success=f"{row['success_rate']:.2f}",
                                kl=f"{row.get('approx_kl', 0):.3f}")
            if tcfg.eval_every and (it + 1) % tcfg.eval_every == 0 and it + 1 < total:
                self.evaluate(it + 1, "during")
            self.iteration = it + 1
            if (it + 1) % tcfg.save_every == 0 or it + 1 == total:
                state = self.state_dict() if self.run is not None or self.ranks.sharded else None  # sharded: a collective
                if self.run is not None:
                    self.run.save_checkpoint(state)
        after = self.evaluate(total, "after")
        if self.run is not None:
            self.run.plot()
        return {"before": before, "after": after}

    def _iteration_tasks(self, it: int) -> list[str]:
        """The tasks of iteration `it`, a function of (seed, it) alone, so a resumed run draws the same."""
        tcfg, n = self.cfg.train, len(self.train_tasks)
        k = min(tcfg.tasks_per_iteration, n)
        if tcfg.task_order == "random":
            picked = np.random.default_rng([tcfg.seed, it, 0]).choice(n, size=k, replace=False)
        else:  # consecutive slices of one long sequence of shuffled passes over the tasks
            start = it * k
            passes = range(start // n, (start + k - 1) // n + 1)
            order = np.concatenate([np.random.default_rng([tcfg.seed, p, 1]).permutation(n) for p in passes])
            offset = start - passes[0] * n
            picked = order[offset : offset + k]
        return [self.train_tasks[i] for i in picked]

    def step(self, it: int) -> dict[str, Any]:
        """One iteration: collect, update, log. Returns the metrics row."""
        tcfg = self.cfg.train
        tasks = self._iteration_tasks(it)
        t0 = time.time()
        # each rank collects whole groups: its share of the tasks, all K rollouts of each
        with self.ranks.full_weights(self.trained):
            trajs = self.train_source.collect(self.ranks.shard(tasks), self.cfg.collector.group_size, _seed_for(tcfg.seed, it, 0))
        t_collect = time.time() - t0
        for traj in trajs:
            traj.info["iteration"] = it
            traj.group_id = self.ranks.rank + traj.group_id * self.ranks.world  # the task's index in `tasks`
        t1 = time.time()
        metrics = self.update(trajs, it)
        self._hand_over_weights()
        t_update = time.time() - t1
        trajs = self.ranks.gather(trajs)
        generated = sum(t.num_generated for t in trajs)
        row = {"iteration": it, "algorithm": self.algo.name,
               "reward_mean": float(np.mean([t.reward for t in trajs])),
               "success_rate": float(np.mean([t.success for t in trajs])),
               "trajectories": len(trajs), "generated_tokens": generated,
               "tokens_per_s": generated / max(t_collect, 1e-9), "collect_s": round(t_collect, 3),
               "update_s": round(t_update, 3), **metrics,
               **{f"behaviour/{k}": v for k, v in behaviour(trajs).items() if v is not None}}
        if self.run is not None:
            if tcfg.save_trajectories:
                self.run.append_trajectories(trajs)
            self.run.log_metrics(row)
        return row


def _chunks(batch: Batch, size: int) -> Iterable[Batch]:
    for start in range(0, len(batch), size):
        yield batch[start : start + size]


def _progress(it: Iterable[int], enabled: bool, **kwargs: Any) -> Any:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc="train", unit="it", dynamic_ncols=True, **kwargs)


def build(cfg: Config, run: Run | None = None, log: Callable[[str], None] = print,
          ranks: Ranks | None = None) -> tuple[Trainer, Any]:
    """Model, policy, collector and trainer from a config. Returns (trainer, collector); close the collector.
    With several ranks, only rank 0 gets `run` and logs."""
    import gymnasium as gym

    from idagym.agents.hf_policy import TransformersPolicy
    from idagym.algorithms import ALGORITHMS
    from idagym.collector import Collector as EnvCollector
    from idagym.demonstrations import FileDemonstrations, SolutionDemonstrations, load_demonstrations
    from idagym.devices import resolve_device

    requested = resolve_device(cfg.train.device)
    ranks = ranks or Ranks(requested)
    device = ranks.device(requested)
    if not ranks.is_main:
        run, log = None, lambda line: None
    torch.set_num_threads(cfg.train.threads)
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    env_kwargs = dict(cfg.collector.env_kwargs)
    probe = gym.make(cfg.train.env, **env_kwargs)
    try:
        policy = TransformersPolicy.from_config(cfg.model, cfg.policy, env=probe, device=device)
        duplicated = probe.unwrapped.duplicated_task_ids(cfg.train.split)
        train_tasks = [t for t in probe.unwrapped.task_ids(cfg.train.split) if t not in duplicated]
        eval_tasks = probe.unwrapped.task_ids(cfg.train.eval_split) if cfg.train.eval_split else []
    finally:
        probe.close()
    train_source: Any = None
    if ALGORITHMS[cfg.algorithm.name].learns_from == "demonstrations" and cfg.train.demonstrations:
        demos = load_demonstrations(cfg.train.demonstrations, vocab_size=len(policy.tokenizer), task_ids=train_tasks)
        train_source = FileDemonstrations(demos)
        train_tasks = train_source.task_ids
    collector = EnvCollector(cfg.train.env, policy, cfg.collector.num_envs, env_kwargs,
                             progress=cfg.train.progress and cfg.collector.progress and ranks.is_main)
    if ALGORITHMS[cfg.algorithm.name].learns_from == "demonstrations" and train_source is None:
        train_source = SolutionDemonstrations(collector, policy, collector.envs[0].unwrapped.solution)
    trainer = Trainer(cfg, policy.model, collector, train_tasks, eval_tasks, pad_token_id=policy.pad_id, run=run, log=log,
                      train_source=train_source, ranks=ranks)
    return trainer, collector
