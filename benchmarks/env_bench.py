"""AppWorldEnv overhead and throughput, against bare in-process AppWorld measured in the same run.

Prints: reset latency (median), steps/s of a one-API-call step, the ratio of the env's step time
to `AppWorld.execute` called directly in one process (goal <= 1.10: the sandbox's pipes must be
cheap), the ratio of the env's reset + evaluate (fresh sandbox and apps process, scoring in a
fresh process from the saved state) to a bare `AppWorld(task_id)` + `evaluate()` (goal <= 2.0),
and throughput with 1 and 2 envs stepping in parallel (one thread each).
Medians; the load average is printed because the machine is shared.

    python benchmarks/env_bench.py [--steps 60] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from idagym.appworld import AppWorldEnv  # noqa: E402
from idagym.appworld.tasks import load_split, suite_root  # noqa: E402

STEP = "print(apis.api_docs.show_app_descriptions())"  # one API call, a short printout

# AppWorld freezes time.perf_counter/monotonic while a world is open: time with clock_gettime.
DIRECT = """
import json, sys, time
from idagym.appworld.tasks import use_root
use_root(sys.argv[1])
from appworld import AppWorld
clock = lambda: time.clock_gettime(time.CLOCK_MONOTONIC)
world = AppWorld(task_id=sys.argv[2], experiment_name="idagym-bench/direct")
world.execute(sys.argv[3])
times = []
for _ in range(int(sys.argv[4])):
    t = clock(); world.execute(sys.argv[3]); times.append(clock() - t)
world.close()
print(json.dumps(times))
"""


DIRECT_EPISODE = """
import json, sys, time
from idagym.appworld.tasks import use_root
use_root(sys.argv[1])
from appworld import AppWorld
clock = lambda: time.clock_gettime(time.CLOCK_MONOTONIC)
times = []
for i in range(int(sys.argv[3]) + 1):
    t = clock()
    world = AppWorld(task_id=sys.argv[2], experiment_name="idagym-bench/direct")
    world.evaluate()
    times.append(clock() - t)
    world.close()
print(json.dumps(times[1:]))  # the first one warms caches
"""


def direct_episode_times(root: str, task_id: str, n: int) -> list[float]:
    out = subprocess.run([sys.executable, "-c", DIRECT_EPISODE, root, task_id, str(n)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def env_episode_times(env: AppWorldEnv, task_id: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        env.reset(options={"task_id": task_id})
        env.evaluate()
        times.append(time.perf_counter() - t)
    return times


def direct_step_times(root: str, task_id: str, n: int) -> list[float]:
    out = subprocess.run([sys.executable, "-c", DIRECT, root, task_id, STEP, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def env_step_times(env: AppWorldEnv, task_id: str, n: int) -> list[float]:
    env.reset(options={"task_id": task_id})
    env.step(STEP)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        env.step(STEP)
        times.append(time.perf_counter() - t)
    return times


def throughput(envs: list[AppWorldEnv], task_id: str, seconds: float) -> float:
    counts = [0] * len(envs)
    stop = time.perf_counter() + seconds

    def drive(i: int) -> None:
        env = envs[i]
        env.reset(options={"task_id": task_id})
        while time.perf_counter() < stop:
            env.step(STEP)
            counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(envs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    root = str(suite_root())
    task_id = load_split("train", root=root)[0]
    print(f"load average before: {os.getloadavg()}")
    envs = [AppWorldEnv(root=root, max_turns=10**6, step_timeout_s=60) for _ in range(2)]
    try:
        for env in envs:  # start both workers (process start is not part of any figure)
            env.reset(options={"task_id": task_id})
        resets = []
        for _ in range(7):
            t = time.perf_counter()
            envs[0].reset(options={"task_id": task_id})
            resets.append(time.perf_counter() - t)
        # Interleave the two measurements so that load changes hit both alike.
        direct, stepped = [], []
        for _ in range(2):
            direct += direct_step_times(root, task_id, args.steps // 2)
            stepped += env_step_times(envs[0], task_id, args.steps // 2)
        d, e = statistics.median(direct), statistics.median(stepped)
        print(f"reset latency (median of 7, warm worker): {statistics.median(resets) * 1000:.1f} ms")
        print(f"one-API-call step: env {e * 1000:.2f} ms ({1 / e:.0f} steps/s); direct AppWorld.execute {d * 1000:.2f} ms")
        print(f"env step / direct execute (medians): {e / d:.3f}  (goal <= 1.10)")
        direct_ep, env_ep = [], []
        for _ in range(2):
            direct_ep += direct_episode_times(root, task_id, 5)
            env_ep += env_episode_times(envs[0], task_id, 5)
        de, ee = statistics.median(direct_ep), statistics.median(env_ep)
        print(f"reset + evaluate: env {ee * 1000:.0f} ms; direct AppWorld open + evaluate {de * 1000:.0f} ms")
        print(f"env reset+evaluate / direct open+evaluate (medians): {ee / de:.3f}  (goal <= 2.0)")
        t1 = throughput(envs[:1], task_id, args.seconds)
        t2 = throughput(envs, task_id, args.seconds)
        print(f"throughput: 1 env {t1:.1f} steps/s, 2 envs {t2:.1f} steps/s (x{t2 / t1:.2f})")
    finally:
        for env in envs:
            env.close()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
