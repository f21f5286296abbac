"""P12: the factory instantiates in a clean environment, connects to nothing it was not given,
and shutdown() leaves no thread or file descriptor behind. Runs in a child process so that the
import itself is observed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .machine import declared

CHILD = textwrap.dedent("""
    import json, os, sys, threading, time
    connects = []
    def audit(event, args):
        if event == "socket.connect":
            connects.append([event, repr(args[1])])
    sys.addaudithook(audit)
    started = time.perf_counter()
    from tiercheck.contract import Env, load_factory
    factory = load_factory(sys.argv[1])
    import_connects = list(connects)
    threads_before = {t.ident for t in threading.enumerate()}
    fds_before = set(os.listdir("/proc/self/fd"))
    env = Env(cache_dir=os.path.join(os.getcwd(), "cache"), redis_url=sys.argv[2] or None,
              database_url=sys.argv[3] or None, namespace="p12", clock=lambda: 1000.0)
    cache = factory(env)
    construct_seconds = time.perf_counter() - started
    construct_connects = list(connects)
    open("f", "wb").write(b"x")
    cache.put("f", {"a": 1})
    cache.get("f")
    cache.warm_cache(["f"], lambda p, t: {"b": 2})
    cache.shutdown()
    leftover_threads = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    leftover_fds = sorted(set(os.listdir("/proc/self/fd")) - fds_before)
    print(json.dumps({"import_connects": import_connects, "construct_connects": construct_connects,
                      "all_connects": connects, "seconds": construct_seconds,
                      "threads": leftover_threads, "fds": [os.readlink(f"/proc/self/fd/{fd}") for fd in leftover_fds
                                                            if os.path.exists(f"/proc/self/fd/{fd}")]}))
""")


def run_child(impl: str, tmp_path, redis_url: str = "", database_url: str = "") -> dict:
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    (tmp_path / "home").mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, impl, redis_url, database_url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"the implementation failed in a clean environment:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.prop("P12")
def test_P12_clean_environment_no_backends(impl_spec, impl_factory, tmp_path):
    report = run_child(impl_spec, tmp_path)
    print(f"P12: import + construction took {report['seconds']:.3f}s")
    assert not report["import_connects"], f"connections at import: {report['import_connects']}"
    assert not report["all_connects"], f"connections with no backend configured: {report['all_connects']}"
    assert not report["threads"], f"threads left after shutdown(): {report['threads']}"
    assert not report["fds"], f"descriptors left after shutdown(): {report['fds']}"
    # SPEC: "within a second". Wall-clock asserts are not allowed in CI; 30 s only catches a hang.
    assert report["seconds"] < 30


@pytest.mark.prop("P12")
def test_P12_connects_only_to_configured_backends(impl_spec, impl_factory, tmp_path, fake_redis_server):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    if not declared(impl_factory).accepts_database(db):
        db = ""  # a cache without a SQLite tier: Redis alone is configured
    report = run_child(impl_spec, tmp_path, fake_redis_server.url, db)
    assert not report["import_connects"], f"connections at import: {report['import_connects']}"
    port = str(fake_redis_server.port)
    strangers = [c for c in report["all_connects"] if port not in c[1]]
    assert not strangers, f"connections to unconfigured addresses: {strangers}"
    assert not report["threads"], f"threads left after shutdown(): {report['threads']}"
    assert not report["fds"], f"descriptors left after shutdown(): {report['fds']}"
