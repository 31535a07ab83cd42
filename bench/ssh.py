#!/usr/bin/env python3
"""bench/ssh: the SSH gateway against the Docker CLI and the preview path.

    .venv/bin/python bench/ssh.py [--keys 200] [--megabytes 100] [--requests 300]

Runs manage.py sshgateway (and daphne, for the preview) on loopback with a
throwaway data directory and one real box, and measures each figure beside
its baseline in the same run:
  - keystroke echo (p50, p99): a key typed, until a process in the box sends
    it back (upper-cased, so a local echo cannot pass for it), through
    Debian's `ssh -tt` to the gateway, and through `docker exec -it` of the
    same process, each client on a pseudo-terminal here;
  - `scp` of a file into the box, against `docker cp` of the same file (the
    median of three each, taken in turns), each from the start of its
    command to its end;
  - a keep-alive GET of a small page through `ssh -L`, against the same GET
    through the box's preview.
Targets: echo p50 overhead <= 1 ms; scp >= 0.5x docker cp.
"""

import argparse
import contextlib
import http.client
import os
import pty
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tty
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

REPO = sandbox.REPO
percentile = sandbox.percentile
COPIES = 3


# In the box: the TTY raw, and each byte sent back upper-cased, so what comes
# back was through the box (a local echo would be lower-case).
UPPER = [
    "sh", "-c", "stty raw -echo; exec python3 -c 'import os\nwhile d := os.read(0, 64): "
    "os.write(1, d.upper())'",
]  # fmt: skip


def echo_times(argv: list[str], keys: int) -> list[float]:
    """Seconds from a key typed to its echo from the box, argv (a client
    running UPPER on a TTY) on a pseudo-terminal of ours."""
    pid, terminal = pty.fork()
    if pid == 0:  # raw, as a terminal emulator's
        tty.setraw(0)
        os.execvp(argv[0], argv)
    seen = bytearray()

    def until(text: bytes, timeout=30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]}: never saw {text!r} in {bytes(seen[-200:])!r}")
            if select.select([terminal], [], [], 0.5)[0]:
                seen.extend(os.read(terminal, 65536))

    try:
        deadline = time.monotonic() + 30
        while b"READY" not in seen:  # until the far side runs
            os.write(terminal, b"ready")
            with contextlib.suppress(RuntimeError):
                until(b"READY", timeout=0.5)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start: {bytes(seen[-200:])!r}")
        time.sleep(0.5)
        times = []
        for n in range(keys):
            seen.clear()
            started = time.perf_counter()
            os.write(terminal, bytes([97 + n % 26]))
            until(bytes([65 + n % 26]))
            times.append(time.perf_counter() - started)
        return times
    finally:
        os.close(terminal)
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start()
    import preview as preview_bench  # bench/preview.py: daphne serving a preview
    from django.contrib.auth import get_user_model

    from boxes import lifecycle
    from ssh import accounts
    from tests.previews_support import run_app
    from tests.support import free_port, wait_for_port

    folder = Path(tempfile.mkdtemp(prefix="spoon-bench-ssh-"))
    gateway = forward = preview = None
    try:
        user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
        key = folder / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        accounts.add_key(user, "bench", (folder / "key.pub").read_text())
        box = lifecycle.ensure_box(user)
        run_app(box.username, 8080)
        port = free_port()
        log = open(folder / "gateway.log", "wb")
        gateway = subprocess.Popen(
            [sys.executable, "manage.py", "sshgateway", "--bind", "127.0.0.1", "--port",
             str(port)], cwd=REPO, env=os.environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(port)
        options = [
            "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={folder / 'known'}",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        target = f"{box.username}@127.0.0.1"
        ssh = ["ssh", "-p", str(port), *options]

        through_echo = echo_times([*ssh, "-tt", target, shlex.join(UPPER)], args.keys)
        docker = shutil.which("docker")
        cli_echo = echo_times([docker, "exec", "-it", "-u", "1000", box.container_name, *UPPER],
                              args.keys)  # fmt: skip

        sent = folder / "sent.bin"
        sent.write_bytes(os.urandom(args.megabytes << 20))
        scp_rates, cp_rates = [], []
        for n in range(COPIES):  # taken in turns, the median of each: the machine is noisy
            started = time.perf_counter()
            subprocess.run(["scp", "-P", str(port), *options, sent, f"{target}:/tmp/sent{n}.bin"],
                           check=True)  # fmt: skip
            scp_rates.append(args.megabytes / (time.perf_counter() - started))
            started = time.perf_counter()
            subprocess.run([docker, "cp", sent, f"{box.container_name}:/tmp/copied{n}.bin"],
                           check=True)  # fmt: skip
            cp_rates.append(args.megabytes / (time.perf_counter() - started))
        scp_rate, cp_rate = statistics.median(scp_rates), statistics.median(cp_rates)

        local = free_port()
        forward = subprocess.Popen([*ssh, "-N", "-L", f"127.0.0.1:{local}:localhost:8080", target])
        wait_for_port(local)
        forwarded = preview_bench.keep_alive_gets(
            http.client.HTTPConnection("127.0.0.1", local, timeout=60), {}, args.requests
        )
        preview = preview_bench.Preview(data_dir, user, box)
        previewed = preview_bench.keep_alive_gets(
            preview.connection(), preview.headers, args.requests
        )
    finally:
        for process in (forward, gateway):
            if process:
                process.terminate()
                process.wait()
        if preview:
            preview.stop()
        shutil.rmtree(folder, ignore_errors=True)
        sandbox.finish(data_dir, instance)

    ms = 1000
    p50 = statistics.median
    rows = [
        ("keystroke echo p50", f"{p50(through_echo) * ms:.2f} ms",
         f"{p50(cli_echo) * ms:.2f} ms (docker exec -it)",
         f"overhead {(p50(through_echo) - p50(cli_echo)) * ms:.2f} ms (target <= 1)"),
        ("keystroke echo p99", f"{percentile(through_echo, 0.99) * ms:.2f} ms",
         f"{percentile(cli_echo, 0.99) * ms:.2f} ms", ""),
        (f"{args.megabytes} MB into the box, median of {COPIES}", f"{scp_rate:.0f} MB/s (scp)",
         f"{cp_rate:.0f} MB/s (docker cp)", f"{scp_rate / cp_rate:.2f}x (target >= 0.5)"),
        ("keep-alive GET p50", f"{p50(forwarded) * ms:.2f} ms (ssh -L)",
         f"{p50(previewed) * ms:.2f} ms (the preview)", ""),
        ("keep-alive GET p99", f"{percentile(forwarded, 0.99) * ms:.2f} ms",
         f"{percentile(previewed, 0.99) * ms:.2f} ms", ""),
    ]  # fmt: skip
    sandbox.print_table(("figure", "through the gateway", "baseline", ""), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
