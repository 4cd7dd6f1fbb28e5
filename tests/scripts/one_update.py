"""One LOOP update on fixed trajectories, in one process or as a rank of `accelerate launch`;
rank 0 saves the updated weights and the step's (clipped) gradients to argv[1]. Each rank trains on
its own whole groups (rank r: groups r, r + 2). argv[2]: 'mixed' (the ranks' trajectories generate
different numbers of tokens), 'idle' (rank 1's groups are all ties: it has nothing to learn),
'lora' (as mixed, on SmolLM2-135M with a LoRA adapter), 'checkpointed' (as mixed, with activation
checkpointing) or 'ppo' (as mixed, PPO with its value head, whose weights and gradients are saved
too; then a checkpoint round trip: a second update after restoring the checkpoint equals the one
made without it);
argv[3] (optional): train.sharding, none or fsdp2."""

import copy
import sys

import torch
from torch.distributed.tensor import DTensor

from idagym.agents.models import load_model_and_tokenizer
from idagym.algorithms.ranks import Ranks, end_rank_process
from idagym.algorithms.trainer import Trainer
from idagym.buffer import Trajectory, Turn
from idagym.config import load_config

# two generated tokens in turn 0, and two or four in turn 1
SHORT = ([0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0], [-1, -1, -1, 0, 0, -1, -1, 1, 1, -1, -1])
LONG = ([0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1], [-1, -1, -1, 0, 0, -1, -1, 1, 1, 1, 1])
GROUPS = [0, 0, 1, 1, 2, 2, 3, 3]
REWARDS = {"mixed": [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.0], "idle": [1.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.0, 0.0]}
REWARDS["lora"] = REWARDS["checkpointed"] = REWARDS["ppo"] = REWARDS["mixed"]
MODEL = {"lora": ["model.name=smollm2-135m", "model.lora=true"],
         "checkpointed": ["model.name=tiny", "model.lora=false", "model.gradient_checkpointing=true"],
         "ppo": ["model.name=tiny", "model.lora=false", "algorithm.name=ppo"]}


def full(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of the whole tensor, gathered from the ranks' shards when FSDP2 holds it (every rank calls this)."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor.clone()


def main(out: str, mode: str, sharding: str) -> None:
    torch.set_num_threads(1)
    model = MODEL.get(mode, ["model.name=tiny", "model.lora=false"])
    cfg = load_config(None, model + ["train.env=idagym/Lookup-v0", "train.lr=1e-2", "train.epochs=1", "train.minibatch_size=8",
                                     "train.tasks_per_iteration=4", "train.progress=false", f"train.sharding={sharding}"])
    model, _ = load_model_and_tokenizer(cfg.model)
    ranks = Ranks(torch.device("cpu"), sharding)
    trainer = Trainer(cfg, model, collector=None, train_tasks=[f"t{g}" for g in sorted(set(GROUPS))], ranks=ranks)
    ids = torch.randint(3, 250, (len(GROUPS), len(SHORT[0])), generator=torch.Generator().manual_seed(0))
    trajs = []
    for i, (r, g) in enumerate(zip(REWARDS[mode], GROUPS, strict=True)):
        mask, turns = LONG if g % 2 and mode != "idle" else SHORT
        trajs.append(Trajectory(task_id=f"t{g}", group_id=g, input_ids=ids[i].tolist(), loss_mask=list(mask),
                                logprobs=[-5.0 * m for m in mask], turn_index=list(turns),
                                turns=[Turn("o"), Turn("o")], reward=r, terminated=True))
    mine = [t for t in trajs if t.group_id in ranks.shard(sorted(set(GROUPS)))]
    metrics = trainer.update(mine)
    assert metrics["steps"] == 1, metrics
    trained = [(n, p) for n, p in trainer.trained.named_parameters() if p.requires_grad]
    assert all(isinstance(p, DTensor) for _, p in trained) == (sharding == "fsdp2"), "sharded as asked"
    weights, grads = {n: full(p.detach()) for n, p in trained}, {n: full(p.grad) for n, p in trained}
    if mode == "ppo":  # the checkpoint holds what the next update needs: Adam's moments included
        state = copy.deepcopy(ranks.broadcast(trainer.state_dict()))  # unsharded, it holds the live tensors
        trainer.update(mine, iteration=1)
        straight = {n: full(p.detach()) for n, p in trained}
        trainer.load_state_dict(state)
        trainer.update(mine, iteration=1)
        for name, p in trained:
            assert torch.equal(full(p.detach()), straight[name]), f"{name} differs after the checkpoint round trip"
    if ranks.is_main:
        torch.save({"weights": weights, "grads": grads}, out)
    ranks.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "none")
    end_rank_process(0)
