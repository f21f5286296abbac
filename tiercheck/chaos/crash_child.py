"""The process E3 kills: seeded puts, invalidates and cleanups over a cache_dir and a SQLite database.

Before each operation it writes one line to stdout (a pipe to the parent), flushed:
    B <step> <op> <file> <variant> <tier or *> <clock> <value json or ->
and after it:
    D <step> <result>
With `--kill-at STEP:EVENTS` it SIGKILLs itself deterministically after EVENTS Python call events
(sys.setprofile, C calls included) inside operation STEP, or at the start of STEP+1 if STEP ended
first. Without it, it runs until the parent kills it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys

from tiercheck.contract import Env, load_factory

TIERS = ("premium", "free")
FILES = ("a", "b", "c")


def content(name: str, variant: int) -> bytes:
    return f"crash file {name} variant {variant}\n".encode() * (2 + variant)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--impl", required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--files", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--start", type=int, required=True)
    p.add_argument("--clock", type=float, required=True)
    p.add_argument("--ttl", type=float, required=True)
    p.add_argument("--ops", type=int, default=1000)
    p.add_argument("--kill-at", default=None)
    args = p.parse_args(argv)
    now = [args.clock]
    env = Env(
        cache_dir=args.cache_dir,
        database_url=args.database_url,
        namespace=args.namespace,
        clock=lambda: now[0],
        ttl_seconds=args.ttl,
    )
    cache = load_factory(args.impl)(env)
    rng = random.Random(args.seed)
    kill_step, kill_events = (int(x) for x in args.kill_at.split(":")) if args.kill_at else (-1, 0)
    out = sys.stdout
    count = [0]

    def profiler(frame, event, arg):  # noqa: ARG001 - the sys.setprofile signature
        count[0] += 1
        if count[0] >= kill_events:
            os.kill(os.getpid(), signal.SIGKILL)

    for step in range(args.start, args.start + args.ops):
        now[0] = args.clock + (step - args.start)
        op = rng.choices(("put", "invalidate", "cleanup"), (6, 3, 1))[0]
        name, variant = rng.choice(FILES), rng.randrange(2)
        tier = rng.choice(TIERS) if op == "put" or rng.random() < 0.5 else "*"
        path = os.path.join(args.files, name)
        with open(path, "wb") as f:
            f.write(content(name, variant))
        value = {"f": name, "v": variant, "t": tier, "step": step, "pad": "p" * rng.randrange(0, 2000)}
        shown = json.dumps(value, sort_keys=True) if op == "put" else "-"
        out.write(f"B {step} {op} {name} {variant} {tier} {now[0]} {shown}\n")
        out.flush()
        if step == kill_step + 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == kill_step:
            sys.setprofile(profiler)
        if op == "put":
            result = cache.put(path, value, tier)
        elif op == "invalidate":
            result = cache.invalidate(path, None if tier == "*" else tier)
        else:
            result = cache.cleanup()
        sys.setprofile(None)
        out.write(f"D {step} {result!r}\n")
        out.flush()
    cache.shutdown()


if __name__ == "__main__":
    main()
