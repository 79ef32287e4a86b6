"""A pytest-xdist worker on another host, reached over ssh (``--tx ssh=...``).

The other host is this one, through an sshd the fixture starts on a free loopback port with keys
of its own (skipped with the reason where no sshd is installed or it cannot let this user in).
The worker gets a directory of its own that xdist rsyncs the project into, as it would on a
real remote host, and it does not inherit this test's lease directory: it leases its device
under its own host's default one, while the controller measures nothing, gathers the worker's
results and alone writes the baselines and reports.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SSHD_START_S = 10.0
BENCHES = """
import pytest


@pytest.mark.tpu_bench(model="models/tiny_dense.tflite")
def test_dense(tpu_bench):
    tpu_bench()


@pytest.mark.tpu_bench(model="models/tiny_conv.tflite")
def test_conv(tpu_bench):
    tpu_bench()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An ssh client config whose host ``edgetpu-remote`` is an sshd on 127.0.0.1."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
    if sshd is None or ssh is None or keygen is None:
        pytest.skip("no sshd, ssh or ssh-keygen here (apt-get install openssh-server)")
    home = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "user_key"):
        _run(keygen, "-q", "-N", "", "-t", "ed25519", "-f", str(home / key))
    authorized = home / "authorized_keys"
    shutil.copyfile(home / "user_key.pub", authorized)
    authorized.chmod(0o600)
    port = _free_port()
    config = home / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {authorized}\nPidFile {home / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
    )
    if os.geteuid() == 0:  # sshd wants its privilege separation directory when run as root
        Path("/run/sshd").mkdir(exist_ok=True)
    server = subprocess.Popen(
        # sshd re-executes itself, which it does only when started by its absolute path.
        [str(Path(sshd).resolve()), "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = home / "ssh_config"
    client.write_text(
        f"Host edgetpu-remote\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {home / 'user_key'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    try:
        deadline = time.monotonic() + SSHD_START_S
        while True:
            login = _run(ssh, "-F", str(client), "edgetpu-remote", "true")
            if login.returncode == 0:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                words = (server.communicate()[1] or login.stderr).strip().splitlines()
                pytest.skip(f"the test's sshd did not let this user in: {words[-1:] or '?'}")
            time.sleep(0.2)
        yield client
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def test_a_remote_worker_measures_and_the_controller_writes_the_baselines(
    project: pytest.Pytester, ssh_host: Path, tmp_path: Path
) -> None:
    started = time.time() - 1
    project.makepyfile(test_remote=BENCHES)
    remote = tmp_path / "remote"
    remote.mkdir()
    spec = f"ssh_config={ssh_host}//ssh=edgetpu-remote//python={sys.executable}//chdir={remote}"

    def through_the_remote_worker(*args: str) -> pytest.RunResult:
        # xdist deprecates --rsyncdir, and it is how a remote worker gets the project.
        return project.runpytest_subprocess(
            *("--tx", spec, "--dist=load", "--rsyncdir", str(project.path)),
            *("--edgetpu-device=cpu:0", "--edgetpu-json=r.json", "-p", "no:randomly"),
            *("-W", "ignore::DeprecationWarning", *args),
        )

    # Recorded however busy the host is: the measurement is not what this test is about.
    result = through_the_remote_worker("--edgetpu-update-baselines", "--edgetpu-accept-unstable")
    result.assert_outcomes(passed=2)
    # The worker ran in the directory the project was rsynced into, not in the project.
    assert (remote / project.path.name / "test_remote.py").is_file()
    written = sorted((project.path / "baselines").glob("*.json"))
    assert len(written) == 1 and not (remote / project.path.name / "baselines").exists()
    entries = json.loads(written[0].read_text())["entries"]
    assert sorted(entries) == ["test_remote.py::test_conv", "test_remote.py::test_dense"]
    results = json.loads((project.path / "r.json").read_text())["results"]
    assert {r["device"] for r in results} == {"cpu:0"}
    result.stdout.fnmatch_lines(["*2 baseline(s) recorded*"])

    # Gated against those baselines, through the same remote worker.
    # A wide threshold: what is tested is the way there and back, not this host's slow modes
    # (a stored baseline minutes old can read +30% on unchanged code here; noise.md).
    gated = through_the_remote_worker("--edgetpu", "--edgetpu-threshold=500%")
    gated.assert_outcomes(passed=2)
    gated_results = json.loads((project.path / "r.json").read_text())["results"]
    assert all(r["compared_entry"] is not None for r in gated_results)  # what it had recorded
    # The worker leased cpu:0 on its host, under that host's lease directory, not the test's.
    lease = Path(tempfile.gettempdir()) / "pytest-edgetpu-leases" / "cpu-0.lock"
    assert lease.stat().st_mtime >= started
