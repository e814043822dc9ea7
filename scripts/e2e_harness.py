"""What the Python end-to-end scripts share: build the binaries, start the fake Kiro and the gateway
in front of it on 127.0.0.1, keep their output, stop them.

    from e2e_harness import launch
    fake, gateway = launch(script="tools", build=True, env={"MAX_RETRIES": "1"})
    ...  # gateway.url, gateway.text() (its log so far)
    gateway.stop(); fake.stop()

The binaries come from $CARGO_TARGET_DIR (default ./target), debug profile unless `profile` says
otherwise. The gateway runs in a fresh temporary directory (no stray .env) with only PATH and HOME
from the caller's environment.
"""

import os
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
KEY = "e2e-proxy-key-0123456789"


class Child:
    """A process whose output lines are kept; `url` is the address it announced."""

    def __init__(self, argv, env, cwd, which):
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            text=True,
            errors="replace",
            stdout=pipe if which == "stdout" else subprocess.DEVNULL,
            stderr=pipe if which == "stderr" else subprocess.DEVNULL,
        )
        self.lines = []
        self.url = None
        self.started = threading.Event()
        stream = self.proc.stdout if which == "stdout" else self.proc.stderr
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        if not self.started.wait(30):
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start:\n{self.text()}")

    def _read(self, stream):
        marker = "listening on http://"
        for line in stream:
            self.lines.append(line)
            if self.url is None and marker in line:
                self.url = "http://" + line.split(marker, 1)[1].split()[0]
                self.started.set()

    def text(self):
        return "".join(self.lines)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def build(profile="debug"):
    flags = ["--release"] if profile == "release" else []
    subprocess.run(
        ["cargo", "build", "--quiet", *flags, "--bin", "kiro-gateway", "--example", "fake_kiro"],
        cwd=ROOT,
        check=True,
    )


def launch(script=None, build_first=True, profile="debug", env=None, key=KEY, fake_args=()):
    """Starts the fake Kiro (`--script <script>` when given, then `fake_args`) and the gateway
    against it; returns both once the gateway has fetched the model list."""
    if build_first:
        build(profile)
    out = os.path.join(TARGET, profile)
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    argv = [os.path.join(out, "examples", "fake_kiro"), "--port", "0"]
    if script:
        argv += ["--script", script]
    argv += list(fake_args)
    fake = Child(argv, base, ROOT, "stdout")
    settings = dict(
        base,
        PROXY_API_KEY=key,
        SERVER_HOST="127.0.0.1",
        SERVER_PORT="0",
        KIRO_API_URL=fake.url,
        KIRO_MANAGEMENT_URL=fake.url,
        KIRO_DESKTOP_AUTH_URL=fake.url + "/refreshToken",
        KIRO_SSO_OIDC_URL=fake.url + "/token",
        KIRO_UPDATE_URL=fake.url + "/stable/latest.yml",
        REFRESH_TOKEN="e2e-refresh-token",
        LOG_LEVEL="INFO",
    )
    settings.update(env or {})
    try:
        gateway = Child([os.path.join(out, "kiro-gateway")], settings, tempfile.mkdtemp(), "stderr")
    except Exception:
        fake.stop()
        raise
    deadline = time.time() + 20
    while "model list" not in gateway.text():
        if time.time() > deadline:
            gateway.stop()
            fake.stop()
            raise RuntimeError("the gateway never fetched the model list:\n" + gateway.text())
        time.sleep(0.05)
    return fake, gateway
