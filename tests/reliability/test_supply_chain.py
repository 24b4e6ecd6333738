"""Supply chain: every dependency pinned with hashes, the image installs only from the lock, and
the built image carries no installer or build tool it does not use at run time.

The static checks read `requirements/*.txt` and the `Dockerfile`. The image checks reuse the
container tests' fixtures (`tests/image/conftest.py`: the engine, and the image built once or
given by `RTB_IMAGE`) and skip when no container engine answers.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from benchmark.server import REPO_ROOT

# docker-py leaves the engine's unix socket to the garbage collector after a container's logs.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

REQUIREMENTS = REPO_ROOT / "requirements"
DOCKERFILE = REPO_ROOT / "Dockerfile"
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile `--generate-hashes` lock file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith(("-e", "--index-url", "--extra-index-url", "--trusted-host")), (
            f"{path.name}: {line!r} lets an unpinned or foreign source in"
        )
        assert "://" not in line, f"{path.name}: {line!r} installs from a URL"
        if line.startswith("--hash="):
            assert current is not None, f"{path.name}: a hash before any requirement"
            algorithm, _, digest = line.removeprefix("--hash=").rstrip(" \\").partition(":")
            assert algorithm == "sha256" and re.fullmatch(r"[0-9a-f]{64}", digest), line
            entries[current][1].append(digest)
            continue
        requirement = line.rstrip(" \\").split(";")[0].strip()
        name, separator, version = requirement.partition("==")
        assert separator and version, f"{path.name}: {requirement!r} is not pinned with =="
        current = _normalise(name)
        entries[current] = (version, [])
    return entries


def direct_inputs(path: Path) -> set[str]:
    names = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#")[0].strip()
        if line and not line.startswith("-"):
            match = _NAME.match(line)
            assert match, line
            names.add(_normalise(match.group(1)))
    return names


@pytest.mark.parametrize("lock", ["runtime.txt", "dev.txt"])
def test_every_locked_package_is_pinned_with_a_sha256(lock: str) -> None:
    entries = locked(REQUIREMENTS / lock)
    assert entries, f"{lock} locks nothing"
    unhashed = sorted(name for name, (_, hashes) in entries.items() if not hashes)
    assert not unhashed, f"{lock}: no hash for {unhashed}"


@pytest.mark.parametrize(("source", "lock"), [("runtime.in", "runtime.txt"), ("dev.in", "dev.txt")])
def test_every_declared_dependency_is_in_its_lock(source: str, lock: str) -> None:
    missing = direct_inputs(REQUIREMENTS / source) - set(locked(REQUIREMENTS / lock))
    assert not missing, f"{source} names {sorted(missing)}, which {lock} does not lock"


def dockerfile_instructions() -> list[str]:
    """Instructions with their continuation lines joined and comments dropped."""
    instructions: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        instructions.append(" ".join((pending + raw).split()))
        pending = ""
    return [i for i in instructions if i]


def test_the_image_installs_python_packages_only_from_hash_locked_files() -> None:
    instructions = dockerfile_instructions()
    installs = [
        command
        for instruction in instructions
        if instruction.startswith("RUN ")
        for command in re.split(r"&&|;", instruction)
        if re.search(r"\bpip3? install\b", command)
    ]
    assert installs, "the Dockerfile installs no Python packages at all?"
    for command in installs:
        assert "--require-hashes" in command, command
        assert "--no-deps" in command, f"transitive dependencies must come from the lock: {command}"
        assert "--only-binary=:all:" in command, f"no source builds at image build time: {command}"
        files = re.findall(r"-r\s+(\S+)", command)
        assert files and all(f.endswith(".txt") for f in files), command
    copied = " ".join(i for i in instructions if i.startswith("COPY "))
    assert "requirements/runtime.txt" in copied
    fetches = [i for i in instructions if re.search(r"\b(curl|wget)\b|^ADD\s+https?://", i)]
    assert not fetches, f"the image downloads outside the lock: {fetches}"


# ---------------------------------------------------------------------------------------------
# The built image.

try:  # the container tests' fixtures: the engine, and the image built once per session
    from image.conftest import engine, image  # noqa: F401
except ImportError:  # pragma: no cover - tests/image is not importable here

    @pytest.fixture
    def engine() -> Any:
        pytest.skip("the container tests' fixtures (tests/image/conftest.py) are not importable")


@pytest.fixture
def built_image(engine: Any, request: pytest.FixtureRequest) -> str:
    """The container tests' image (or `RTB_IMAGE`). Skipped when it cannot be built here (no
    registry for the default base image, say), failed instead under RTB_REQUIRE_CONTAINER=1."""
    if prebuilt := os.environ.get("RTB_IMAGE"):
        return prebuilt
    try:
        tag: str = request.getfixturevalue("image")
    except Exception as exc:
        if os.environ.get("RTB_REQUIRE_CONTAINER") == "1":
            raise
        pytest.skip(f"the image cannot be built here: {str(exc).splitlines()[0][:300]}")
    return tag


PROBE = r"""
import glob, importlib.util, json, os, shutil
import container.entrypoint, serve.app  # the server's code is readable by whoever runs it
def _ensurepip_installs_pip():
    # ensurepip.version() answers from a constant even with no wheel to install, and Debian
    # refuses `python -m ensurepip` for its system Python but still seeds `python -m venv`
    # with pip from /usr/share/python-wheels: try both for real.
    import subprocess, sys, tempfile
    with tempfile.TemporaryDirectory() as root:
        base = getattr(sys, "_base_executable", sys.executable)
        for command in ([sys.executable, "-m", "ensurepip", "--root", root + "/e"],
                        [base, "-m", "venv", root + "/v"]):
            subprocess.run(command, capture_output=True)
        return bool(glob.glob(root + "/**/pip/__init__.py", recursive=True))

tools = ["pip", "pip3", "g++", "c++", "clang", "make", "cmake", "git", "curl", "wget", "ld.gold",
         "gcov", "gdb"]
found = {
    "tools": sorted(t for t in tools if shutil.which(t)),
    "cxx_compiler": sorted(glob.glob("/usr/lib/gcc/*/*/cc1plus")),
    "lto": sorted(glob.glob("/usr/lib/gcc/*/*/lto1")),
    "pip_importable": importlib.util.find_spec("pip") is not None,
    "pip_caches": sorted(p for p in ("/root/.cache/pip", os.path.expanduser("~/.cache/pip"))
                         if os.path.exists(p)),
    "apt_lists": sorted(os.listdir(lists)) if os.path.isdir(lists := "/var/lib/apt/lists") else [],
    "leftover_requirements": sorted(glob.glob("/tmp/requirements*")),
    "ensurepip_can_install_pip": _ensurepip_installs_pip(),
    "uid": os.getuid(),
}
found["apt_lists"] = [f for f in found["apt_lists"] if f not in ("partial", "lock", "auxfiles")]
print(json.dumps(found))
"""


def probe(engine: Any, image: str, **options: Any) -> dict[str, Any]:
    container = engine.containers.run(
        image, ["-c", PROBE], entrypoint=["python"], detach=True, **options
    )
    try:
        status = int(container.wait(timeout=120)["StatusCode"])
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status == 0, output
    found: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return found


@pytest.mark.container
def test_the_image_carries_no_build_tool_cache_or_installer_it_does_not_use(
    engine: Any, built_image: str
) -> None:
    """gcc stays (tl2cgen compiles a raw SageMaker model at start-up); nothing else that builds,
    fetches or installs does."""
    found = probe(engine, built_image)
    print(f"\nimage {built_image}: {found}")
    assert found["tools"] == [], found["tools"]
    assert found["cxx_compiler"] == [] and found["lto"] == [], found
    assert not found["pip_importable"], "pip is importable by the runtime Python"
    assert found["pip_caches"] == [] and found["apt_lists"] == [], found
    assert found["leftover_requirements"] == [], found


@pytest.mark.container
def test_the_image_cannot_install_an_installer(engine: Any, built_image: str) -> None:
    assert not probe(engine, built_image)["ensurepip_can_install_pip"]


@pytest.mark.container
def test_the_image_runs_as_an_arbitrary_non_root_user(engine: Any, built_image: str) -> None:
    found = probe(engine, built_image, user="54321:54321")
    assert found["uid"] == 54321
