"""Multi-model mode in process: SageMaker's /models contract on the ASGI app, several apps on one
registry directory standing for the workers of one instance."""

from __future__ import annotations

import asyncio
import gc
import shutil
import tempfile
import threading
from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_messages import chunk, client_for
from mme_models import RawModel, csv_body, csv_scores, request_rows, train_raw_model

from container.model_source import build_model_artifact
from serve.app import create_app
from serve.models import RESIDENT_BYTES_PER_WORKER
from serve.settings import Settings

CSV = {"content-type": "text/csv", "accept": "text/csv"}
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def raw_models(tmp_path_factory: pytest.TempPathFactory) -> list[RawModel]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("raw-models")
    return [train_raw_model(root / f"m{seed}", seed=seed) for seed in (1, 2, 3)]


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The builder's artifact cache under this test's tmp dir."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def settings_for(registry: Path, **overrides: Any) -> Settings:
    base = Settings(workers=2, multi_model=True, models_registry_dir=registry)
    return replace(base, **overrides)


@pytest.fixture()
def registry_dir(private_tmp: Path) -> Iterator[Path]:
    directory = private_tmp / "registry"
    yield directory


async def invoke(client: httpx.AsyncClient, name: str, features: np.ndarray) -> httpx.Response:
    return await client.post(f"/models/{name}/invoke", content=csv_body(features), headers=CSV)


async def load(client: httpx.AsyncClient, name: str, url: Path | str) -> httpx.Response:
    return await client.post("/models", json={"model_name": name, "url": str(url)})


def assert_parity(response: httpx.Response, model: RawModel, features: np.ndarray) -> None:
    assert response.status_code == 200, response.text
    got = csv_scores(response.content)
    assert np.abs(got - model.expected(features)).max() <= TOLERANCE


def test_load_invoke_each_model_with_parity_then_list_describe_and_unload(
    raw_models: list[RawModel], tiny_artifact: Path, registry_dir: Path
) -> None:
    app = create_app(settings_for(registry_dir), build=build_model_artifact)
    features = request_rows()
    tiny_reference = tiny_artifact.parent / f"{tiny_artifact.name}-reference.json"

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await client.get("/ping")).status_code == 200
            for index, model in enumerate(raw_models):
                answer = await load(client, f"bidder-{index}", model.directory)
                assert answer.status_code == 200, answer.text
                assert answer.json() == {
                    "modelName": f"bidder-{index}",
                    "modelUrl": str(model.directory),
                }
            assert (await load(client, "tiny", tiny_artifact)).status_code == 200
            for index, model in enumerate(raw_models):
                assert_parity(await invoke(client, f"bidder-{index}", features), model, features)
            import xgboost

            booster = xgboost.Booster(model_file=str(tiny_reference))
            tiny = RawModel(directory=tiny_artifact, booster=booster)
            assert_parity(await invoke(client, "tiny", features), tiny, features)

            listed = (await client.get("/models")).json()
            assert sorted(m["modelName"] for m in listed["models"]) == [
                "bidder-0",
                "bidder-1",
                "bidder-2",
                "tiny",
            ]
            assert "nextPageToken" not in listed
            described = await client.get("/models/tiny")
            assert described.json() == {"modelName": "tiny", "modelUrl": str(tiny_artifact)}

            again = await load(client, "tiny", tiny_artifact)
            assert again.status_code == 409
            assert again.json()["error"] == "model_already_loaded"

            assert (await client.delete("/models/bidder-1")).status_code == 200
            for answer in (
                await invoke(client, "bidder-1", features),
                await client.get("/models/bidder-1"),
                await client.delete("/models/bidder-1"),
            ):
                assert answer.status_code == 404
                assert answer.json()["error"] == "model_not_found"
            # The others are untouched.
            assert_parity(await invoke(client, "bidder-2", features), raw_models[2], features)

    asyncio.run(scenario())


def test_a_model_already_compiled_is_not_compiled_again(
    raw_models: list[RawModel], registry_dir: Path, private_tmp: Path
) -> None:
    builds: list[Path] = []

    def build(source: Path) -> Path:
        artifact = build_model_artifact(source)
        builds.append(artifact)
        return artifact

    app = create_app(settings_for(registry_dir), build=build)
    cache = private_tmp / "rtb-inference-artifacts"

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await load(client, "a", raw_models[0].directory)).status_code == 200
            entries = sorted(cache.iterdir())
            assert (await client.delete("/models/a")).status_code == 200
            # The same content under another name: the cached artifact, not a second build.
            assert (await load(client, "b", raw_models[0].directory)).status_code == 200
            assert sorted(cache.iterdir()) == entries

    asyncio.run(scenario())
    assert len(builds) == 2 and builds[0] == builds[1]


def test_bad_models_are_refused_with_400_and_the_others_keep_serving(
    raw_models: list[RawModel], registry_dir: Path, private_tmp: Path
) -> None:
    app = create_app(settings_for(registry_dir), build=build_model_artifact)
    garbage = private_tmp / "garbage"
    garbage.mkdir()
    (garbage / "xgboost-model").write_bytes(b"\x00not a model at all" * 10)
    empty = private_tmp / "empty"
    empty.mkdir()
    features = request_rows(rows=3)

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await load(client, "good", raw_models[0].directory)).status_code == 200
            for url in (garbage, empty, private_tmp / "missing"):
                answer = await load(client, "bad", url)
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"] == "invalid_model"
            for body in (b"not json", b"[]", b'{"model_name": "x"}', b'{"url": "/x"}'):
                answer = await client.post("/models", content=body)
                assert answer.status_code == 400
                assert answer.json()["error"] == "malformed_payload"
            assert (await client.get("/models/bad")).status_code == 404
            assert_parity(await invoke(client, "good", features), raw_models[0], features)

    asyncio.run(scenario())


def test_a_load_request_is_read_by_the_one_body_reader_with_its_byte_cap(
    registry_dir: Path,
) -> None:
    app = create_app(settings_for(registry_dir, max_body_bytes=1_000))

    async def scenario() -> None:
        async with client_for(app) as client:
            url = "/opt/ml/models/m/model" + "/x" * 600
            answer = await client.post("/models", json={"model_name": "m", "url": url})
            assert answer.status_code == 413, answer.text
            assert answer.json()["error"] == "payload_too_large"
            assert (await client.get("/models")).json() == {"models": []}

    asyncio.run(scenario())


def test_a_compiled_model_is_accounted_its_library_once_and_what_each_worker_holds(
    raw_models: list[RawModel], registry_dir: Path
) -> None:
    app = create_app(settings_for(registry_dir, workers=3), build=build_model_artifact)

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await load(client, "m", raw_models[0].directory)).status_code == 200

    asyncio.run(scenario())
    entry = app.state.registry.get("m")
    assert entry.predictor == "compiled"
    library = Path(entry.artifact_dir) / "model.so"
    assert entry.memory_bytes == library.stat().st_size + 3 * RESIDENT_BYTES_PER_WORKER


def test_a_load_over_the_memory_budget_is_507_until_a_model_is_unloaded(
    raw_models: list[RawModel], registry_dir: Path
) -> None:
    probe = create_app(settings_for(registry_dir / "probe"), build=build_model_artifact)

    async def size_of_one() -> int:
        async with client_for(probe) as client:
            assert (await load(client, "probe", raw_models[0].directory)).status_code == 200
        registry = probe.state.registry
        return int(registry.get("probe").memory_bytes)

    one = asyncio.run(size_of_one())
    assert one > 0
    # Room for the first model and not the second (the three are the same size within 20%).
    app = create_app(
        settings_for(registry_dir, models_memory_bytes=int(one * 1.5)), build=build_model_artifact
    )

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await load(client, "first", raw_models[0].directory)).status_code == 200
            full = await load(client, "second", raw_models[1].directory)
            assert full.status_code == 507
            assert full.json()["error"] == "insufficient_memory"
            assert (await client.get("/models/second")).status_code == 404
            assert (await client.delete("/models/first")).status_code == 200
            assert (await load(client, "second", raw_models[1].directory)).status_code == 200

    asyncio.run(scenario())


def test_the_list_is_paged_with_next_page_token(tiny_artifact: Path, registry_dir: Path) -> None:
    app = create_app(settings_for(registry_dir, models_page_size=2))
    names = [f"advertiser/{index:02d}" for index in range(5)]

    async def scenario() -> list[list[str]]:
        pages: list[list[str]] = []
        async with client_for(app) as client:
            for name in reversed(names):
                assert (await load(client, name, tiny_artifact)).status_code == 200
            token: str | None = None
            while True:
                params = {} if token is None else {"next_page_token": token}
                page = (await client.get("/models", params=params)).json()
                pages.append([model["modelName"] for model in page["models"]])
                token = page.get("nextPageToken")
                if token is None:
                    break
            bad = await client.get("/models", params={"next_page_token": "!!!"})
            assert bad.status_code == 400 and bad.json()["error"] == "invalid_page_token"
            # A name with a slash is one name in every route.
            assert (await client.get("/models/advertiser/03")).status_code == 200
            assert (await client.delete("/models/advertiser/03")).status_code == 200
        return pages

    pages = asyncio.run(scenario())
    assert pages == [names[0:2], names[2:4], names[4:5]]


def test_workers_share_loads_and_unloads_through_the_registry(
    raw_models: list[RawModel], registry_dir: Path
) -> None:
    """Two apps on one registry directory, as two workers: a model loaded through one is served
    by the other; unloaded or replaced through one, the other stops serving the old model."""
    first = create_app(settings_for(registry_dir), build=build_model_artifact)
    second = create_app(settings_for(registry_dir), build=build_model_artifact)
    features = request_rows()

    async def scenario() -> None:
        async with client_for(first) as one, client_for(second) as two:
            assert (await load(one, "m", raw_models[0].directory)).status_code == 200
            assert_parity(await invoke(two, "m", features), raw_models[0], features)
            assert (await load(two, "m", raw_models[1].directory)).status_code == 409
            assert (await one.delete("/models/m")).status_code == 200
            assert (await invoke(two, "m", features)).status_code == 404
            # Reloaded under the same name with another model: never the old one's answers.
            assert (await load(one, "m", raw_models[1].directory)).status_code == 200
            assert_parity(await invoke(two, "m", features), raw_models[1], features)
            listed = (await two.get("/models")).json()["models"]
            assert [model["modelName"] for model in listed] == ["m"]

    asyncio.run(scenario())


def test_a_worker_drops_its_least_recently_used_models_over_the_budget(
    raw_models: list[RawModel], registry_dir: Path
) -> None:
    """A worker whose budget holds two of the three models keeps the two it used last; one it
    dropped loads again on its next request, and stays loaded for the instance."""
    loader = create_app(settings_for(registry_dir), build=build_model_artifact)
    worker = create_app(settings_for(registry_dir), build=build_model_artifact)
    features = request_rows(rows=4)

    async def scenario() -> None:
        async with client_for(loader) as one, client_for(worker) as two:
            for index, model in enumerate(raw_models):
                assert (await load(one, f"m{index}", model.directory)).status_code == 200
            registry = worker.state.registry
            sizes = [registry.get(f"m{index}").memory_bytes for index in range(3)]
            registry.budget_bytes = sum(sizes) - 1  # any two fit, not three
            for name in ("m0", "m1", "m0", "m2"):
                assert (await invoke(two, name, features)).status_code == 200
            assert registry.resident_names == ["m0", "m2"]  # m1 was the least recently used
            assert_parity(await invoke(two, "m1", features), raw_models[1], features)
            assert registry.resident_names == ["m2", "m1"]
            listed = (await two.get("/models")).json()["models"]
            assert [model["modelName"] for model in listed] == ["m0", "m1", "m2"]

    asyncio.run(scenario())


def test_loading_does_not_block_requests_to_other_models(
    raw_models: list[RawModel], registry_dir: Path
) -> None:
    release = threading.Event()

    def slow_build(source: Path) -> Path:
        if source == raw_models[1].directory:
            release.wait(timeout=60)
        return build_model_artifact(source)

    app = create_app(settings_for(registry_dir), build=slow_build)
    features = request_rows(rows=2)

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await load(client, "served", raw_models[0].directory)).status_code == 200
            loading = asyncio.create_task(load(client, "slow", raw_models[1].directory))
            await asyncio.sleep(0)
            for _ in range(20):  # answered while the load waits in its thread
                assert_parity(await invoke(client, "served", features), raw_models[0], features)
            assert not loading.done()
            release.set()
            assert (await loading).status_code == 200
            assert_parity(await invoke(client, "slow", features), raw_models[1], features)

    asyncio.run(scenario())


def test_concurrent_loads_unloads_and_invokes_never_5xx_nor_answer_from_another_model(
    raw_models: list[RawModel], registry_dir: Path
) -> None:
    workers = [create_app(settings_for(registry_dir), build=build_model_artifact) for _ in "ab"]
    features = request_rows(rows=8)
    expected = [model.expected(features) for model in raw_models]

    async def scenario() -> list[int]:
        statuses: list[int] = []
        async with client_for(workers[0]) as one, client_for(workers[1]) as two:
            clients = [one, two]
            assert (await load(one, "stable-0", raw_models[0].directory)).status_code == 200
            assert (await load(two, "stable-1", raw_models[1].directory)).status_code == 200

            async def churn(client: httpx.AsyncClient) -> None:
                for _ in range(6):  # the same name, loaded and unloaded from both workers
                    answer = await load(client, "churn", raw_models[2].directory)
                    statuses.append(answer.status_code)
                    answer = await client.delete("/models/churn")
                    statuses.append(answer.status_code)

            async def invoke_all(client: httpx.AsyncClient) -> None:
                for round_ in range(30):
                    index = round_ % 3
                    name = "churn" if index == 2 else f"stable-{index}"
                    answer = await invoke(client, name, features)
                    statuses.append(answer.status_code)
                    if answer.status_code == 200:
                        got = csv_scores(answer.content)
                        assert np.abs(got - expected[index]).max() <= TOLERANCE, name
                    else:
                        assert name == "churn" and answer.status_code == 404

            await asyncio.gather(
                *(churn(client) for client in clients),
                *(invoke_all(client) for client in clients * 2),
            )
        return statuses

    statuses = asyncio.run(scenario())
    assert set(statuses) <= {200, 404, 409}
    assert statuses.count(200) > 0


def mapped(library: Path) -> bool:
    with open("/proc/self/maps") as maps:
        return any(line.rstrip("\n").endswith(str(library)) for line in maps)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_a_model_unloaded_during_a_request_answers_it_then_unmaps_its_library(
    tiny_artifact: Path, registry_dir: Path, private_tmp: Path
) -> None:
    """The request has its handler before its body arrives; the unload lands meanwhile. The
    request is answered by that model (its library stays mapped while the request can call it),
    then the library is closed."""
    model_dir = private_tmp / "in-flight"
    shutil.copytree(tiny_artifact, model_dir)  # a path of its own, so its mapping is visible
    library = model_dir / "model.so"
    import xgboost

    booster = xgboost.Booster(
        model_file=str(tiny_artifact.parent / f"{tiny_artifact.name}-reference.json")
    )
    model = RawModel(directory=model_dir, booster=booster)
    app = create_app(settings_for(registry_dir))
    features = request_rows(rows=1)
    body_arrives = asyncio.Event()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await body_arrives.wait()
        return chunk(csv_body(features), False)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/models/m/invoke",
        "raw_path": b"/models/m/invoke",
        "query_string": b"",
        "headers": [(b"content-type", b"text/csv")],
    }

    async def scenario() -> None:
        async with client_for(app) as client:
            assert (await load(client, "m", model_dir)).status_code == 200
            request = asyncio.create_task(app(scope, receive, send))
            for _ in range(10):  # the request reaches its body and waits there
                await asyncio.sleep(0)
            assert not request.done()
            assert (await client.delete("/models/m")).status_code == 200
            gc.collect()
            assert mapped(library)
            body_arrives.set()
            await request
        assert sent[0]["status"] == 200, sent
        response = httpx.Response(200, content=sent[1]["body"])
        assert_parity(response, model, features)
        gc.collect()
        assert not mapped(library)

    asyncio.run(scenario())


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_a_worker_releases_a_model_unloaded_through_another_without_a_request_for_it(
    tiny_artifact: Path, registry_dir: Path, private_tmp: Path
) -> None:
    """SageMaker sends no request for a model it unloaded: the worker that did not get the
    DELETE drops it on its own, and its library is unmapped."""
    model_dir = private_tmp / "elsewhere"
    shutil.copytree(tiny_artifact, model_dir)
    first = create_app(settings_for(registry_dir))
    second = create_app(settings_for(registry_dir))
    registry = second.state.registry

    async def scenario() -> None:
        async with client_for(first) as one, client_for(second) as two:
            assert (await load(one, "m", model_dir)).status_code == 200
            assert (await invoke(two, "m", request_rows(rows=1))).status_code == 200
            assert registry.resident_names == ["m"]
            sweeper = asyncio.create_task(registry.drop_stale_every(interval_s=0.01))
            await asyncio.sleep(0.05)
            assert registry.resident_names == ["m"]  # loaded still: kept
            assert (await one.delete("/models/m")).status_code == 200
            for _ in range(500):
                if not registry.resident_names:
                    break
                await asyncio.sleep(0.01)
            sweeper.cancel()
            assert registry.resident_names == []

    asyncio.run(scenario())
    gc.collect()
    assert not mapped(model_dir / "model.so")


def test_the_schema_declares_the_multi_model_routes(registry_dir: Path) -> None:
    app = create_app(settings_for(registry_dir))

    async def scenario() -> dict[str, Any]:
        async with client_for(app) as client:
            schema: dict[str, Any] = (await client.get("/openapi.json")).json()
            assert (await client.post("/invocations", content=b"1")).status_code == 404
            wrong = await client.put("/models/x/invoke")
            assert wrong.status_code == 405
            return schema

    paths = asyncio.run(scenario())["paths"]
    assert set(paths["/models"]) == {"get", "post"}
    assert set(paths["/models/{model_name}"]) == {"get", "delete"}
    invoke_operation = paths["/models/{model_name}/invoke"]["post"]
    assert {"200", "404", "400", "415"} <= set(invoke_operation["responses"])
    assert "/invocations" not in paths
    assert "503" not in paths["/ping"]["get"]["responses"]
