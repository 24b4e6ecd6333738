"""Hostile model directories and archives, each built from a good artifact or the seed model.

Every case carries the proof that it did no harm: a marker file that its payload would create
if it ever ran (a pickle's `__reduce__`, a shared library's constructor), or a path outside the
target that a traversal would write. Tests assert those paths never appear.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.artifact import sha256_file
from tests.seed import SEED_TARBALL

SEED_MODEL = SEED_TARBALL


@dataclass(frozen=True, kw_only=True)
class HostileModel:
    name: str
    path: Path
    """The model directory (or archive) to hand to the server or to `python -m model build`."""
    must_not_exist: tuple[Path, ...]
    """Files that exist only if the payload ran or the traversal wrote outside its target."""
    log_mentions: tuple[str, ...]
    """Any one of these (case-insensitive) in the log counts as a clear refusal."""


def evil_library(directory: Path, *, marker: Path) -> Path:
    """A shared library whose constructor creates `marker` the moment anything dlopens it."""
    source = directory / "evil.c"
    source.write_text(
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void pwn(void) {\n"
        f'  FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("loaded", f); fclose(f); }}\n'
        "}\n"
        "int predict(void *data, int margin, float *result) { return 0; }\n",
        encoding="utf-8",
    )
    library = directory / "evil.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return library


class _Reduce:
    """Pickles as ``callable(*args)``: what a malicious model file runs on `pickle.load`."""

    def __init__(self, call: Callable[..., object], *args: object) -> None:
        self.call = call
        self.args = args

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return self.call, self.args


def _touch_command(marker: Path) -> str:
    return f"touch {marker}"


def malicious_pickles(marker: Path) -> dict[str, bytes]:
    """Pickles that create `marker` when loaded by a plain `pickle.load`, several routes each."""
    import builtins
    import os
    import subprocess as sp

    touch = _touch_command(marker)
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os-system": pickle.dumps(_Reduce(os.system, touch), protocol=4),
        "builtins-exec": pickle.dumps(_Reduce(builtins.exec, code), protocol=2),
        "builtins-eval": pickle.dumps(_Reduce(builtins.eval, code), protocol=0),
        "subprocess-popen": pickle.dumps(_Reduce(sp.Popen, ["touch", str(marker)]), protocol=4),
        # The Booster route, with a payload hidden in its state: a nested reduce the restricted
        # unpickler must refuse even though the outer class is the one it expects.
        "booster-state-payload": _booster_with_payload(touch),
    }


def _booster_with_payload(command: str) -> bytes:
    """A pickle of `xgboost.core.Booster` whose state dict holds an `os.system` call."""
    import os

    payload = pickle.dumps(_Reduce(os.system, command), protocol=4)
    # GLOBAL 'xgboost.core Booster', EMPTY_TUPLE, NEWOBJ, then the state built by the payload.
    head = b"\x80\x04c" + b"xgboost.core\nBooster\n" + b")\x81"
    state = b"}(X\x06\x00\x00\x00handle" + payload[2:-1] + b"u"  # strip PROTO and STOP
    return head + state + b"b."


def raw_model_dir(root: Path, name: str, content: bytes) -> Path:
    """A directory shaped like SageMaker's unpacked training output: one `xgboost-model`."""
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "xgboost-model").write_bytes(content)
    return directory


def seed_model_bytes() -> bytes:
    with tarfile.open(SEED_MODEL) as archive:
        member = archive.extractfile("xgboost-model")
        assert member is not None
        return member.read()


def pickle_cases(root: Path) -> list[HostileModel]:
    marker = root / "pickle-ran.marker"
    cases = [
        HostileModel(
            name=f"pickle-{label}",
            path=raw_model_dir(root, f"pickle-{label}", content),
            must_not_exist=(marker,),
            log_mentions=("pickle", "refus", "unsafe"),
        )
        for label, content in malicious_pickles(marker).items()
    ]
    seed = seed_model_bytes()
    for label, content in {
        "truncated-seed": seed[: len(seed) // 2],
        "garbage": bytes(range(256)) * 64,
        "empty": b"",
    }.items():
        cases.append(
            HostileModel(
                name=f"model-{label}",
                path=raw_model_dir(root, f"model-{label}", content),
                must_not_exist=(),
                log_mentions=("xgboost-model", "format", "corrupt", "truncat", "refus"),
            )
        )
    return cases


def _copy(good: Path, root: Path, name: str) -> Path:
    target = root / name
    shutil.copytree(good, target, symlinks=True)
    return target


def _edit_manifest(directory: Path, edit: Callable[[dict[str, object]], None]) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _rehash(directory: Path, member: str) -> None:
    digest = sha256_file(directory / member)

    def edit(data: dict[str, object]) -> None:
        files = data["files"]
        assert isinstance(files, dict)
        files[member] = digest

    _edit_manifest(directory, edit)


def _library_name(good: Path) -> str:
    data = json.loads((good / "manifest.json").read_text(encoding="utf-8"))
    compiled = data["compiled"]
    return "model.so" if compiled is None else str(compiled["library"])


def artifact_cases(good: Path, root: Path) -> list[HostileModel]:
    """Broken or hostile copies of the good artifact `good`; none may ever become healthy."""
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "library-loaded.marker"
    outside = root / "outside"
    outside.mkdir()
    evil = evil_library(outside, marker=marker)
    library = _library_name(good)
    integrity = ("sha256", "hash", "integrity", "manifest", "outside", "refus")
    cases: list[HostileModel] = []

    def case(name: str, mentions: tuple[str, ...] = integrity) -> Path:
        directory = _copy(good, root, name)
        cases.append(
            HostileModel(name=name, path=directory, must_not_exist=(marker,), log_mentions=mentions)
        )
        return directory

    directory = case("library-byte-flipped")
    blob = bytearray((directory / library).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (directory / library).write_bytes(bytes(blob))

    directory = case("library-replaced-by-evil")
    shutil.copyfile(evil, directory / library)

    directory = case("library-symlink-outside")
    (directory / library).unlink()
    (directory / library).symlink_to(evil)
    _rehash(directory, library)

    def point_library_at(target: str) -> Callable[[dict[str, object]], None]:
        def edit(data: dict[str, object]) -> None:
            compiled = data["compiled"]
            files = data["files"]
            assert isinstance(compiled, dict) and isinstance(files, dict)
            compiled["library"] = target
            files[target] = sha256_file(evil)

        return edit

    directory = case("manifest-library-traversal")
    _edit_manifest(directory, point_library_at("../outside/evil.so"))
    directory = case("manifest-library-absolute")
    _edit_manifest(directory, point_library_at(str(evil)))

    directory = case("library-truncated")
    content = (directory / library).read_bytes()
    (directory / library).write_bytes(content[: len(content) // 3])

    directory = case("checkpoint-truncated-no-library", ("model.tl", "checkpoint", "refus"))
    checkpoint = directory / "model.tl"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    _rehash(directory, "model.tl")
    (directory / library).unlink()

    def drop_library(data: dict[str, object]) -> None:
        files = data["files"]
        assert isinstance(files, dict)
        files.pop(library)
        data["compiled"] = None

    _edit_manifest(directory, drop_library)

    directory = case("verification-garbage-rehashed", ("verification", "npz", "refus"))
    (directory / "verification.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    _rehash(directory, "verification.npz")

    directory = case("verification-pickled-object", ("verification", "npz", "pickle", "refus"))
    buffer = io.BytesIO()
    np.savez(buffer, features=np.array([_Reduce(print, "x")], dtype=object), expected=np.zeros(1))
    (directory / "verification.npz").write_bytes(buffer.getvalue())
    _rehash(directory, "verification.npz")

    directory = case("verification-expected-shifted", ("verification", "mismatch", "differ"))
    with np.load(directory / "verification.npz", allow_pickle=False) as archive:
        features, expected = archive["features"], archive["expected"]
    np.savez(directory / "verification.npz", features=features, expected=expected + 0.01)
    _rehash(directory, "verification.npz")

    directory = case("manifest-truncated", ("manifest", "json"))
    text = (directory / "manifest.json").read_text(encoding="utf-8")
    (directory / "manifest.json").write_text(text[: len(text) // 2], encoding="utf-8")

    directory = case("manifest-missing-file", ("missing", "manifest", "verification"))
    (directory / "verification.npz").unlink()

    return cases


def planted_artifact(good: Path, target: Path, *, marker: Path) -> Path:
    """A complete, self-consistent artifact whose library runs code when loaded: what another
    local user could leave where the server caches imported models. Its checkpoint is genuine,
    so a server that loads it falls back to GTIL and serves normally, hiding the payload."""
    shutil.copytree(good, target)
    library = _library_name(good)
    scratch = target.parent / f".{target.name}-build"
    scratch.mkdir()
    shutil.copyfile(evil_library(scratch, marker=marker), target / library)
    shutil.rmtree(scratch)
    _rehash(target, library)
    return target


def corrupt_library_with_matching_hash(good: Path, root: Path) -> Path:
    """The compiled library cut to a third, and the manifest rewritten to match it: the hash
    check passes, so only the loader can notice (a truncated ELF makes dlopen fault)."""
    root.mkdir(parents=True, exist_ok=True)
    directory = _copy(good, root, "library-truncated-rehashed")
    library = _library_name(good)
    content = (directory / library).read_bytes()
    (directory / library).write_bytes(content[: len(content) // 3])
    _rehash(directory, library)
    return directory


def traversal_archives(root: Path) -> list[HostileModel]:
    """SageMaker-style `model.tar.gz` archives whose members write or point outside."""
    root.mkdir(parents=True, exist_ok=True)
    seed = seed_model_bytes()
    escape_dir = root / "escape-target"
    escape_dir.mkdir()
    cases: list[HostileModel] = []

    def archive(name: str, members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
        path = root / f"{name}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("xgboost-model")
            info.size = len(seed)
            tar.addfile(info, io.BytesIO(seed))
            for member, data in members:
                tar.addfile(member, None if data is None else io.BytesIO(data))
        return path

    def regular(name: str, data: bytes = b"pwned") -> tuple[tarfile.TarInfo, bytes]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        return info, data

    def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        return info, None

    mentions = ("unsafe", "outside", "member", "link", "refus", "archive")

    def case(
        name: str,
        path: Path,
        *,
        must_not_exist: tuple[Path, ...] = (),
        log_mentions: tuple[str, ...] = mentions,
    ) -> None:
        cases.append(
            HostileModel(
                name=name, path=path, must_not_exist=must_not_exist, log_mentions=log_mentions
            )
        )

    dotdot = escape_dir / "dotdot.txt"
    case(
        "tar-dotdot",
        archive("tar-dotdot", [regular(f"../../../../../../../..{dotdot}")]),
        must_not_exist=(dotdot,),
    )
    absolute = escape_dir / "absolute.txt"
    case(
        "tar-absolute",
        archive("tar-absolute", [regular(str(absolute))]),
        must_not_exist=(absolute,),
    )
    through = escape_dir / "through-link.txt"
    case(
        "tar-symlink-then-write",
        archive(
            "tar-symlink-then-write",
            [link("sub", str(escape_dir), tarfile.SYMTYPE), regular("sub/through-link.txt")],
        ),
        must_not_exist=(through,),
    )
    case("tar-symlink-model", _symlink_model_archive(root, seed_target="/etc/passwd"))
    case("tar-hardlink", archive("tar-hardlink", [link("passwd", "/etc/passwd", tarfile.LNKTYPE)]))
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    case("tar-fifo", archive("tar-fifo", [(fifo, None)]))
    many = [regular(f"file-{index}", b"x") for index in range(2_000)]
    case(
        "tar-too-many-members",
        archive("tar-too-many-members", many),
        log_mentions=("members", "refus", "archive"),
    )
    return cases


def _symlink_model_archive(root: Path, *, seed_target: str) -> Path:
    """An archive whose `xgboost-model` is itself a symlink out (to `seed_target`)."""
    path = root / "tar-symlink-model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.type = tarfile.SYMTYPE
        info.linkname = seed_target
        tar.addfile(info)
    return path
