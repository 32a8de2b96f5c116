"""The real app, launched on a free port, driven through its API with gradio_client."""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import timm
from gradio_client import handle_file
from PIL import Image
from safetensors.torch import save_file

from cam_studio.benchmarks.serving import app_client
from cams.methods import DEFAULT_METHODS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client(app_url):
    return app_client(app_url)


def request(client, image=None, example="chelsea", checkpoint_b="clean", upload_a=None,
            target="", methods=DEFAULT_METHODS, endpoint="/explain"):
    """One /explain call; returns grid, table and predictions (or, with endpoint "/downloads",
    the files of the same comparison)."""
    outputs = client.predict(image, example, "efficientnet_lite0", "clean", upload_a,
                             checkpoint_b, None, target, "", list(methods), 0.5,
                             api_name=endpoint)
    return outputs if endpoint == "/downloads" else outputs[:3]


def test_good_request_compares_a_and_b(client):
    grid, table, predictions = request(client)
    assert Image.open(grid).size[0] > 1000 and Image.open(grid).format == "JPEG"
    rows = table["data"]
    assert table["headers"] == ["quantity", "method", "A", "B", "A vs B"]
    susceptibility = {row[1]: row[4] for row in rows if row[0].startswith("susceptibility")}
    assert set(susceptibility) == set(DEFAULT_METHODS)
    assert all(float(value) == 0.0 for value in susceptibility.values())  # clean vs clean
    # The API answers with data: each checkpoint's top-5 and whether A and B agree.
    a, b = predictions["checkpoints"]
    assert (a["label"], b["label"]) == ("A: clean", "B: clean") and predictions["agree"] is True
    assert a["top5"][0]["class"] == 285 and a["top5"][0]["name"] == "Egyptian cat"
    assert 0.3 < a["top5"][0]["probability"] < 0.5 and len(a["top5"]) == 5
    files = request(client, endpoint="/downloads")  # on demand, from the result cache
    names = sorted(Path(f).name for f in files)
    assert names == ["chelsea-A.npz", "chelsea-B.npz", "chelsea-grid.png", "chelsea-report.html",
                     "chelsea-table.csv"]
    maps = np.load(next(f for f in files if f.endswith("-A.npz")))
    assert set(maps.files) == set(DEFAULT_METHODS)


def test_registry_checkpoints_are_offered_and_compared(client):
    _, table, predictions = request(client, checkpoint_b="lite0-half")
    susceptibility = [float(row[4]) for row in table["data"] if row[0].startswith("susceptibility")]
    # Half precision moves the maps a little, and only a little.
    assert 0 < max(susceptibility) < 1e-3
    assert predictions["checkpoints"][1]["label"] == "B: lite0-half" and predictions["agree"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../../app.py", "missing"])
def test_checkpoint_pickers_take_registry_names_not_paths(client, name):
    with pytest.raises(Exception, match="no checkpoint called"):
        request(client, checkpoint_b=name, methods=["GradCAM"])


def test_files_are_served_only_from_the_apps_temporary_folders(app_url):
    # The server's own file records (not the client's downloaded copies): where it serves from.
    files = request(app_client(app_url, download_files=False), methods=["GradCAM"],
                    endpoint="/downloads")
    served = files[0]["path"]
    assert requests.get(f"{app_url}gradio_api/file={served}", timeout=10).status_code == 200
    for forbidden in ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "README.md"),
                      str(Path(served).parents[3] / "outside.txt")]:
        response = requests.get(f"{app_url}gradio_api/file={forbidden}", timeout=10)
        assert response.status_code in (403, 404), forbidden


def make_bad(tmp_path, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "corrupt":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "not-an-image":
        path.write_text("hello")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "huge":
        Image.new("1", (9000, 9000)).save(path)
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("corrupt", "corrupt or truncated"), ("not-an-image", "not an image format"),
    ("empty", "empty (0 bytes)"), ("huge", "megapixels")])
def test_bad_images_give_readable_errors_and_the_app_keeps_serving(client, tmp_path, kind,
                                                                   message):
    with pytest.raises(Exception, match=re.escape(message)) as error:
        request(client, image=handle_file(str(make_bad(tmp_path, kind))), methods=["GradCAM"])
    assert "/tmp/" not in str(error.value)  # no server paths in messages
    assert request(client, methods=["GradCAM"])[2]


def test_odd_modes_are_accepted(client, tmp_path):
    path = tmp_path / "transparent.png"
    Image.new("RGBA", (120, 90), (200, 30, 40, 128)).save(path)
    assert request(client, image=handle_file(str(path)), methods=["GradCAM"])[2]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("evil.pt", b"\x80\x04garbage", ".safetensors"),  # refused by type (Gradio or ours)
    ("broken.safetensors", b"\x00" * 64, "not a valid .safetensors"),
    ("resnet.safetensors", None, "does not fit backbone efficientnet_lite0"),
])
def test_wrong_or_malicious_checkpoints_are_refused(client, tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        save_file(timm.create_model("resnet18", num_classes=3).state_dict(), path)
    else:
        path.write_bytes(content)
    with pytest.raises(Exception, match=re.escape(message)):
        request(client, upload_a=handle_file(str(path)), methods=["GradCAM"])
    assert request(client, methods=["GradCAM"])[2]


def test_bad_class_index(client):
    with pytest.raises(Exception, match="out of range"):
        request(client, target="1000", methods=["GradCAM"])


def test_concurrent_clients_get_the_sequential_results(app_url):
    examples = ["chelsea", "coffee", "astronaut", "rocket", "grace_hopper"]
    solo = app_client(app_url)
    expected = {example: request(solo, example=example)[1]["data"] for example in examples}

    def one_client(index):
        own = app_client(app_url)
        return [(example, request(own, example=example)[1]["data"])
                for example in examples[index % 5:] + examples[:index % 5]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [pair for batch in pool.map(one_client, range(8)) for pair in batch]
    assert len(results) == 40
    for example, data in results:
        assert data == expected[example]


def train_request(client, name, source="synthetic: bona fide vs attack (binary)", loss="baseline",
                  upload=None, steps=4):
    """One /train call (tiny_resnet from random weights); returns the final status line (after
    the run's token, which a page keeps to find its run after a reload)."""
    job = client.submit(name, "tiny_resnet", "random", loss, "GradCAM", source, "", "", upload,
                        steps, 8, None, 0.05, 0, False, api_name="/train")
    token, status, *_ = job.result()
    assert len(token) >= 16
    return status


def test_fine_tune_then_compare_without_a_restart(client):
    status = train_request(client, "tiny-api")
    assert status.startswith("**Done**: `tiny-api` saved") and "auroc" in status
    grid, _, predictions = client.predict(
        None, "chelsea", "tiny_resnet", "tiny-api", None, "none", None, "", "", ["GradCAM"], 0.5,
        api_name="/explain")
    names = {top["name"] for top in predictions["checkpoints"][0]["top5"]}
    assert names == {"bona fide", "attack"}  # its two classes, by name
    assert Image.open(grid).size[1] > 64


def test_fine_tune_on_an_uploaded_zip_with_salience(client, tmp_path):
    import zipfile
    rng = np.random.default_rng(0)
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for label in ("real", "fake"):
            for index in range(4):
                path = tmp_path / f"{label}{index}.png"
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(path)
                zipped.write(path, f"images/{label}/{index}.png")
                mask = np.zeros((10, 10), np.uint8)
                mask[2:5, 3:7] = 255
                Image.fromarray(mask).save(path)
                zipped.write(path, f"salience/{label}/{index}.png")
    server_temp = Path(os.environ.get("TMPDIR") or tempfile.gettempdir())  # as it started

    def unpacked():  # the folders uploads are unpacked into, in the server's temporary folder
        return set(server_temp.glob("cams-data-*"))

    before = unpacked()
    source = "an uploaded zip (images/CLASS/…, optional salience/CLASS/…)"
    status = train_request(client, "zip-run", source, loss="contrast",
                           upload=handle_file(str(archive)))
    assert status.startswith("**Done**: `zip-run` saved"), status
    assert unpacked() == before  # removed when the run ended
    with pytest.raises(Exception, match="checkpoint 'zip-run' already exists"):
        train_request(client, "zip-run", source, loss="contrast",
                      upload=handle_file(str(archive)))
    assert unpacked() == before  # a refused run unpacks nothing


def test_fine_tune_refuses_unsafe_zips_and_missing_maps(client, tmp_path):
    import zipfile
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../escape.txt", "x")
    with pytest.raises(Exception, match="unsafe path"):
        train_request(client, "evil", "an uploaded zip (images/CLASS/…, optional salience/CLASS/…)",
                      upload=handle_file(str(archive)))
    with pytest.raises(Exception, match="needs salience maps"):
        train_request(client, "no-maps", "bundled photos (unlabelled: KL to the starting model)",
                      loss="difference")
    assert request(client, methods=["GradCAM"])[2]  # still serving


def test_evaluate_tab_runs_a_table_and_offers_the_report(client):
    report, plots, archive = client.predict(
        "examples", "", ["efficientnet_lite0"], [], ["similarity"], 2, 1, 10,
        api_name="/evaluate")
    assert "MeanDiffGradCAM" in report and "2 images" in report
    assert len(plots) == 1 and archive.endswith(".zip")
    import zipfile
    with zipfile.ZipFile(archive) as opened:
        assert {"report.md", "similarity.csv", "records/similarity.csv"} <= set(opened.namelist())
    with pytest.raises(Exception, match="needs at least one clean:fooled pair"):
        client.predict("examples", "", ["efficientnet_lite0"], [], ["susceptibility"], 2, 1, 10,
                       api_name="/evaluate")


def test_explain_the_short_way_every_parameter_has_a_default(client):
    """README: ``client.predict(handle_file(img), api_name="/explain")``; methods None = the
    defaults; keyword calls work."""
    photo = ROOT / "docs" / "chelsea.png"
    grid, table, predictions = client.predict(handle_file(str(photo)), api_name="/explain")
    assert Image.open(grid).size[0] > 1000
    compared = {row[1] for row in table["data"] if row[0].startswith("CAM entropy")}
    assert compared == set(DEFAULT_METHODS)
    assert [checkpoint["label"] for checkpoint in predictions["checkpoints"]] == ["A: clean"]
    _, table, _ = client.predict(example="coffee", methods=None, api_name="/explain")
    assert {row[1] for row in table["data"] if row[0].startswith("CAM entropy")} == set(DEFAULT_METHODS)
    _, table, predictions = client.predict(example="coffee", methods=["GradCAM"],
                                           checkpoint_b="sham-one-class-efficientnet_lite0",
                                           api_name="/explain")
    assert predictions["checkpoints"][1]["label"] == "B: sham-one-class-efficientnet_lite0"
    _, table, *_ = client.predict(example="coffee", methods=["GradCAM"], faithfulness=True,
                                  checkpoint_b="sham-one-class-efficientnet_lite0",
                                  api_name="/explain")
    deletion = [row for row in table["data"] if row[0].startswith("deletion AUC")]
    assert [row[1] for row in deletion] == ["GradCAM"] and 0 <= float(deletion[0][2]) <= 1
    info = client.view_api(print_info=False, return_format="dict")
    parameters = info["named_endpoints"]["/explain"]["parameters"]
    assert all(parameter["parameter_has_default"] for parameter in parameters)
    for endpoint in ("/train", "/evaluate"):
        parameters = info["named_endpoints"][endpoint]["parameters"]
        assert all(parameter["parameter_has_default"] for parameter in parameters), endpoint


@pytest.mark.parametrize(("endpoint", "given", "message"), [
    ("/explain", {"opacity": 7}, "7"),
    ("/explain", {"target": 2.5}, "target class 2.5 is neither a class index nor a class name"),
    ("/explain", {"target": "1" * 23}, "target class 11111111111111111111111 is out of range"),
    ("/explain", {"checkpoint_b": "x" * 300}, "no checkpoint called 'xxxxxxxx"),
    ("/explain", {"mean": "nan, 1, 1", "layer": "blocks.6"}, "'nan, 1, 1' is not three numbers"),
    ("/train", {"batch": 0}, "0"),
    ("/train", {"lr": 1e9}, "lr 1000000000.0 is out of range: change 'Learning rate'"),
    ("/train", {"seed": -1}, "seed -1 is out of range: change 'Seed'"),
    ("/evaluate", {"seeds": 1000000}, "seeds 1000000 is out of range: change 'Training seeds'"),
    ("/evaluate", {"training_steps": 1e12}, "out of range: change 'Training steps'"),
])
def test_hostile_numbers_are_one_line_errors(client, endpoint, given, message):
    """Numbers a JSON client may send where the page's controls would not let them: each refused
    in one line (ours name the control; a type or bound the component declares, Gradio's own),
    no stack trace, no black grid; and the app keeps serving."""
    with pytest.raises(Exception, match=re.escape(message)) as caught:
        client.predict(**given, api_name=endpoint)
    assert "Traceback" not in str(caught.value)
    assert request(client, methods=["GradCAM"])[2]["checkpoints"]


def test_a_refresh_of_the_pickers_answers_with_choices_and_replaces_only_a_gone_selection():
    """A refresh (a run ended, the Refresh button, the page opening) may land after a ▶ case set
    new checkpoints: a selection that still exists is left out of its answer, so the values it
    read cannot overwrite newer ones; one that is gone falls back to clean / none."""
    from cam_studio.page.compare import refresh_pickers

    _, a, b = refresh_pickers("efficientnet_lite0", "clean", "sham-one-class-efficientnet_lite0")
    assert "value" not in a and "value" not in b
    assert "sham-one-class-efficientnet_lite0" in [value for _, value in b["choices"]]
    _, a, b = refresh_pickers("efficientnet_lite0", "a-deleted-run", "a-deleted-run")
    assert (a["value"], b["value"]) == ("clean", "none")


def submit_and_leave(url: str, arguments: str, seconds: float) -> None:
    """A client in a process of its own submits ``/API(arguments)`` (Python call arguments, the
    endpoint's ``api_name`` among them), waits ``seconds`` and leaves abruptly (as a closed tab:
    no cancel, its connection simply gone)."""
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c", "import os, time; from gradio_client import Client; "
                    f"Client({url!r}, verbose=False, download_files=False).submit({arguments}); "
                    f"time.sleep({seconds}); os._exit(0)"], timeout=120, check=True)


def test_a_training_run_whose_client_left_is_cancelled_and_frees_the_slot(registry):
    """A /train client that leaves (its process ends) stops following the run; nobody follows
    it for CAMS_UNWATCHED_S (2 s here, a minute by default), so it is cancelled with its state
    saved (Resume is offered) and the next run may start (before: it ran on, blocking all)."""
    import time

    from cam_studio.benchmarks.serving import serving_app
    environment = {"CAMS_CHECKPOINTS": str(registry), "CAMS_UNWATCHED_S": "2"}
    with serving_app(environment=environment) as (url, _):
        submit_and_leave(url, "'left-run', 'tiny_resnet', 'random', 'baseline', 'GradCAM', "
                         "'synthetic: bona fide vs attack (binary)', '', '', None, 100000, 8, "
                         "None, 0.05, 0, False, api_name='/train'", 6)
        client = app_client(url)
        deadline = time.monotonic() + 60
        while True:
            try:
                status = train_request(client, "after-it", steps=2)
                break
            except Exception as error:
                assert "a training run is already going" in str(error), error
                assert time.monotonic() < deadline, "the abandoned run was never cancelled"
                time.sleep(1)
        assert status.startswith("**Done**: `after-it` saved"), status
        with pytest.raises(Exception, match="a cancelled run named 'left-run' is saved"):
            train_request(client, "left-run", steps=2)


@pytest.mark.parametrize("how", ["leaves", "cancels"])
def test_an_evaluation_whose_client_left_or_cancelled_stops_and_frees_the_queue(registry, how):
    """An /evaluate client that leaves mid-run (faithfulness and ROAD on 50 crops: about 7 min
    alone by the tables' estimates; faithfulness alone took 61 s), or cancels it (the tab's
    Cancel, gradio_client's ``job.cancel()``), no longer holds the one evaluation slot: the run
    stops at its next progress report, and a small evaluation asked for after it is served well
    before the abandoned run could have ended (before: it waited 652 s behind it). The bound
    leaves room for a loaded machine (CI once took 31 s; with two trainings beside it the whole
    test took 95 s), and is still far below the abandoned run's 7 minutes."""
    import time

    from cam_studio.benchmarks.serving import serving_app
    with serving_app(environment={"CAMS_CHECKPOINTS": str(registry)}) as (url, _):
        asked = {"source": "crops:50", "tables": ["faithfulness", "road"], "limit": 50}
        if how == "leaves":
            submit_and_leave(url, f"**{asked!r}, api_name='/evaluate'", 8)
        else:
            job = app_client(url).submit(**asked, api_name="/evaluate")
            time.sleep(8)
            job.cancel()
        started = time.monotonic()
        report = app_client(url).predict(source="examples", tables=["similarity"],
                                                    limit=2, api_name="/evaluate")[0]
        assert "2 images" in report
        assert time.monotonic() - started < 180


def test_one_client_cannot_fill_the_queue(registry):
    """40 comparisons submitted at once by one client (one session) against a cap of 4: the
    ones above the cap are refused as a full queue, the others answered, and another client is
    served meanwhile (before: one tab filled the whole queue and everyone got 'Queue is full')."""
    from cam_studio.benchmarks.serving import serving_app
    with serving_app("--max-queued-per-user", "4",
                     environment={"CAMS_CHECKPOINTS": str(registry)}) as (url, _):
        greedy = app_client(url)
        jobs = [greedy.submit(None, example, methods=["GradCAM", "HiResCAM"], api_name="/explain")
                for example in ["chelsea", "coffee", "rocket", "astronaut"] * 10]
        other = app_client(url).predict(example="coffee", methods=["GradCAM"],
                                                   api_name="/explain")
        assert other[2]["checkpoints"]
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(bool(job.result()[2]))
            except Exception as error:
                outcomes.append(str(error))
        answered = [outcome for outcome in outcomes if outcome is True]
        refused = [outcome for outcome in outcomes if outcome is not True]
        assert answered and refused, outcomes
        # gradio_client words Gradio's "queue full" answer itself (the answer's body says why)
        assert all("Queue is full" in message for message in refused), refused[:3]
