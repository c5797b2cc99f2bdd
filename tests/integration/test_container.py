"""The container files: Dockerfile and compose.yaml checked by structure (always), and the
image run for real when USHER_CONTAINER_TESTS=1 (needs podman with runc and the image from
`make image`; not part of the default `make test`, which must pass on a CI machine without a
container engine).

The real run starts the image read-only, as its non-root user, migrates SQLite in the volume,
serves, and passes the image's own HEALTHCHECK command and /health/ through a published port.
"""

import os
import re
import subprocess
import time

import pytest
import requests

from conftest import REPO, free_port

DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE = (REPO / "compose.yaml").read_text()
IMAGE = os.environ.get("USHER_IMAGE", "localhost/usher:latest")


def service_block(name):
    m = re.search(rf"^  {name}:\n((?:    .*\n|\n)*)", COMPOSE, re.M)
    assert m, f"compose.yaml has no service {name}"
    return m.group(1)


def test_dockerfile_structure():
    froms = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", DOCKERFILE, re.M)
    assert len(froms) == 2 and froms[0][1] == "build", froms
    assert froms[1][0] == "${BASE}" and "ARG BASE=docker.io/library/debian:12-slim" in DOCKERFILE
    assert "COPY --from=build /install/ /" in DOCKERFILE
    assert re.search(r"^USER usher:usher$", DOCKERFILE, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/health/", DOCKERFILE, re.M)
    assert 'ENTRYPOINT ["/usr/bin/usher"]' in DOCKERFILE
    runtime = DOCKERFILE.split("FROM ${BASE}\n", 1)[1]
    assert "-dev" not in runtime.split("COPY --from")[0], "build packages in the runtime stage"


def test_compose_services_healthchecks_and_order():
    for name in ("postgres", "redis", "migrate", "web", "worker"):
        block = service_block(name)
        if name != "migrate":
            assert "healthcheck:" in block and "test:" in block, name
    for name in ("web", "worker"):
        block = service_block(name)
        assert re.search(r"migrate:\n\s+condition: service_completed_successfully", block)
        assert re.search(r"redis:\n\s+condition: service_healthy", block)
    assert re.search(r"postgres:\n\s+condition: service_healthy", service_block("migrate"))
    assert 'command: ["migrate"]' in service_block("migrate")
    assert "read_only: true" in COMPOSE and "no-new-privileges" in COMPOSE


PODMAN = ["podman", "--runtime", "runc"]
# Lowered limits: podman's defaults are above what an unprivileged-resource host may set.
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


@pytest.mark.skipif(not os.environ.get("USHER_CONTAINER_TESTS"),
                    reason="set USHER_CONTAINER_TESTS=1 (after make image) to run the image")
def test_image_runs_read_only_and_answers_health():
    name = f"usher-test-{os.getpid()}"
    port = free_port()
    run = subprocess.run(
        [*PODMAN, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", *LIMITS,
         "--cap-drop", "ALL", "-e", "SECRET_KEY=" + "k" * 64, "-e", "DEBUG=true",
         "-p", f"127.0.0.1:{port}:8000", "--entrypoint", "sh", IMAGE, "-c",
         "usher migrate && exec usher serve"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    try:
        deadline = time.time() + 60
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health/", timeout=2)
                if r.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, subprocess.run(
                ["podman", "logs", name], capture_output=True, text=True).stdout
            time.sleep(0.5)
        assert r.json()["status"] == "ok"
        who = subprocess.run(["podman", "exec", name, "id", "-u"], capture_output=True,
                             text=True, timeout=30)
        assert who.stdout.strip() == "10001"
        hc = re.search(r'^HEALTHCHECK .*?CMD (\[.*\])$', DOCKERFILE.replace("\\\n", " "), re.M)
        cmd = __import__("json").loads(hc.group(1))
        check = subprocess.run(["podman", "exec", name, *cmd], capture_output=True, timeout=30)
        assert check.returncode == 0
    finally:
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, timeout=60)
