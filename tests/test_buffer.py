"""The shared rollout buffer: padding, grouping, minibatches, JSONL round trip."""

from __future__ import annotations

import torch

from idagym.buffer import RolloutBuffer, Trajectory, Turn, load_jsonl, save_jsonl


def make_traj(task_id: str, group_id: int, prompt: list[int], response: list[int], reward: float) -> Trajectory:
    traj = Trajectory(task_id=task_id, group_id=group_id)
    traj.extend(prompt, generated=False)
    traj.turns.append(Turn(observation="obs"))
    traj.extend(response, generated=True, logprobs=[-0.5] * len(response))
    traj.turns[-1].response = "resp"
    traj.reward = reward
    return traj


def test_extend_builds_mask_logprobs_and_turn_index():
    traj = make_traj("t", 0, [1, 2, 3], [4, 5], 1.0)
    assert traj.loss_mask == [0, 0, 0, 1, 1]
    assert traj.logprobs == [0.0, 0.0, 0.0, -0.5, -0.5]
    assert traj.turn_index == [-1, -1, -1, 0, 0]
    assert traj.num_generated == 2


def test_generated_tokens_need_logprobs():
    traj = Trajectory(task_id="t")
    try:
        traj.extend([1, 2], generated=True, logprobs=[0.0])
    except ValueError as err:
        assert "log-prob" in str(err)
    else:
        raise AssertionError("expected ValueError")


def test_to_batch_pads_right_and_groups():
    buf = RolloutBuffer([make_traj("a", 0, [1, 2], [3], 1.0), make_traj("a", 0, [1], [2, 3, 4], 0.0)])
    buf.add([make_traj("b", 1, [7], [8], 0.5)])
    batch = buf.to_batch(pad_token_id=99)
    assert batch.input_ids.shape == (3, 4)
    assert batch.input_ids[0].tolist() == [1, 2, 3, 99]
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 0]
    assert batch.loss_mask[1].tolist() == [0, 1, 1, 1]
    assert batch.reward.tolist() == [1.0, 0.0, 0.5]
    assert buf.groups() == {0: [0, 1], 1: [2]}


def test_minibatches_cover_every_trajectory_once_and_trim():
    buf = RolloutBuffer([make_traj(str(i), i, [1] * (i + 1), [2], 0.0) for i in range(5)])
    batch = buf.to_batch()
    seen = []
    for mb in RolloutBuffer.minibatches(batch, 2, torch.Generator().manual_seed(0)):
        assert mb.input_ids.shape[1] == int(mb.length.max())
        seen += mb.group_id.tolist()
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_jsonl_round_trip_and_torn_line(tmp_path):
    path = tmp_path / "traj.jsonl"
    trajs = [make_traj("a", 0, [1], [2], 1.0), make_traj("b", 1, [3], [4], 0.0)]
    save_jsonl(trajs, path)
    with open(path, "a") as f:
        f.write('{"task_id": "torn')  # a crash mid-write
    loaded = load_jsonl(path)
    assert [t.to_json() for t in loaded] == [t.to_json() for t in trajs]
