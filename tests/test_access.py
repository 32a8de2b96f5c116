"""Safe to share: server folders only under --data-root (links resolved), no server paths in a
remote user's errors, per-job limits, an upload cap, and a login (the real app, bound beyond
loopback, driven through gradio_client)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import requests
from gradio_client import handle_file
from PIL import Image

from cam_studio.benchmarks.serving import app_client
from cam_studio.tabs.access import Access
from cams.errors import UserInputError
from tests.conftest import running_app


@pytest.fixture
def tree(tmp_path):
    """root/ with a data folder and a link to a folder outside it; outside/ beside root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data" / "class_a").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "escape")
    return root, outside


def test_a_shared_app_reads_only_folders_under_its_data_root(tree):
    root, outside = tree
    access = Access(remote=True, data_root=root)
    assert access.folder("data", "folder") == (root / "data").resolve()
    assert access.folder(str(root / "data" / "class_a"), "folder") == (root / "data" / "class_a")
    for name in (str(outside), "../outside", "escape", "/etc", "data/../../outside"):
        with pytest.raises(UserInputError, match="inside this app's data root") as caught:
            access.folder(name, "folder")
        assert str(outside) not in str(caught.value) and str(root) not in str(caught.value)
    with pytest.raises(UserInputError, match="off on a shared app"):
        Access(remote=True).folder("data", "folder")
    assert Access().folder(str(outside), "folder") == outside  # loopback: the user's own machine


def test_remote_errors_name_no_server_path_and_jobs_have_limits():
    remote, local = Access(remote=True, max_steps=10, max_images=5), Access()
    message = "no images in /srv/data/x (nor C:\\data\\y): see '/home/me/cams.log'"
    assert remote.public(message) == ("no images in <server path> (nor <server path>): see "
                                      "'<server path>'")
    assert local.public(message) == message
    with pytest.raises(UserInputError, match="at most 10 steps"):
        remote.steps(11)
    assert remote.images(None) == 5 and remote.images(3) == 3 and local.images(None) is None
    with pytest.raises(UserInputError, match="at most 5 images"):
        remote.images(6)


@pytest.fixture(scope="module")
def shared_app(registry, tmp_path_factory):
    """The app bound to every interface, with a login, a data root, a 0.2 MB upload cap and
    5 s a comparison."""
    base = tmp_path_factory.mktemp("shared")
    root, outside = base / "root", base / "outside"
    (root / "photos").mkdir(parents=True)
    outside.mkdir()
    for index in range(2):
        Image.fromarray(np.full((64, 64, 3), 60 * index, np.uint8)).save(
            root / "photos" / f"{index}.png")
        Image.fromarray(np.full((64, 64, 3), 99, np.uint8)).save(outside / f"{index}.png")
    os.symlink(outside, root / "escape")
    with running_app(registry, "--host", "0.0.0.0", "--auth", "teacher:secret", "--data-root",
                     str(root), "--max-upload-mb", "0.2", "--max-compare-seconds", "5") as url:
        yield url, base


def test_a_shared_app_wants_its_login(shared_app):
    url, _ = shared_app
    assert requests.get(url + "config", timeout=30).status_code == 401
    with pytest.raises(Exception):  # noqa: B017 (gradio_client raises its own kinds)
        app_client(url).predict(api_name="/explain")


def test_a_shared_app_refuses_folders_outside_its_root_and_big_uploads(shared_app, tmp_path):
    url, base = shared_app
    client = app_client(url, auth=("teacher", "secret"))

    def evaluate(folder):
        return client.predict(source="a server folder", folder=folder,
                              backbones=["efficientnet_lite0"], tables=["similarity"], limit=2,
                              api_name="/evaluate")

    for folder in (str(base / "outside"), "../outside", "escape"):
        with pytest.raises(Exception, match="inside this app's data root") as caught:
            evaluate(folder)
        assert str(base) not in str(caught.value)
    report, _, archive = evaluate("photos")
    assert "2 images" in report and "DATA_ROOT/photos" in report
    import zipfile
    with zipfile.ZipFile(archive) as opened:  # nothing of the server's folders in the report
        texts = [opened.read(name).decode() for name in opened.namelist()
                 if name.endswith((".md", ".txt", ".csv"))]
    assert texts and not any(str(base) in text for text in [report, *texts])
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 600, 3), np.uint8)).save(big)
    assert big.stat().st_size > 0.2e6
    with pytest.raises(Exception, match="exceeds the maximum file size"):  # gradio_client's check
        client.predict(handle_file(str(big)), api_name="/explain")
    # The server's own check, as a browser meets it: the upload route refuses, in one line.
    browser = requests.Session()
    assert browser.post(url + "login", data={"username": "teacher", "password": "secret"},
                        timeout=30).ok
    refused = browser.post(url + "gradio_api/upload", files={"files": ("big.png", big.read_bytes())},
                           timeout=30)
    assert refused.status_code == 413 and "maximum allowed size" in refused.text
    assert str(base) not in refused.text and len(refused.text.strip().splitlines()) == 1
    small = browser.post(url + "gradio_api/upload", timeout=30,
                         files={"files": ("small.png", (base / "root" / "photos" / "0.png").read_bytes())})
    assert small.status_code == 200
    assert client.predict(example="coffee", methods=["GradCAM"], api_name="/explain")[2]


def test_host_and_port_follow_gradios_variables_and_flags_win(monkeypatch):
    """What Hugging Face Spaces and containers set (GRADIO_SERVER_NAME / _PORT) is the default;
    a flag given on the command line wins; without either, loopback on 7860."""
    from cam_studio.page import command_line
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    plain = command_line().parse_args([])
    assert (plain.host, plain.port) == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    container = command_line().parse_args([])
    assert (container.host, container.port) == ("0.0.0.0", 7861)
    flags = command_line().parse_args(["--host", "127.0.0.1", "--port", "9000"])
    assert (flags.host, flags.port) == ("127.0.0.1", 9000)


def test_guessing_the_password_is_slowed_per_user_name(shared_app):
    """After five wrong passwords a user name waits 2 s before its next attempt is even checked
    (the right password too), then logs in; another name is not held up."""
    url, _ = shared_app

    def login(user, password):
        return requests.post(url + "login", data={"username": user, "password": password},
                             timeout=30).status_code

    started = time.perf_counter()
    assert [login("teacher", f"guess{index}") for index in range(6)] == [400] * 6
    assert login("teacher", "secret") == 400  # within its wait: refused unchecked
    assert login("student", "secret") == 400 and time.perf_counter() - started < 2
    time.sleep(max(0.0, 2.2 - (time.perf_counter() - started)))
    assert login("teacher", "secret") == 200


def test_the_login_waits_grow_and_stay_bounded():
    """By hand: five free failures, then 2, 4, 8, … s, at most 60; a success resets the count;
    the names remembered are bounded."""
    from cam_studio.page import login as module
    now = [0.0]
    check = module.Login("teacher", "secret", clock=lambda: now[0])
    for _ in range(5):
        assert not check("teacher", "wrong")
    assert check.failures["teacher"].wait_until == 0.0
    waits = []
    for _ in range(8):
        assert not check("teacher", "wrong")
        waits.append(check.failures["teacher"].wait_until - now[0])
        assert not check("teacher", "secret")  # too soon
        now[0] = check.failures["teacher"].wait_until
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert check("teacher", "secret") and "teacher" not in check.failures
    for index in range(module.MAX_NAMES + 5):
        check(f"user{index}", "x")
    assert len(check.failures) == module.MAX_NAMES


def test_every_answer_carries_the_security_headers(shared_app):
    url, _ = shared_app
    for address in (url, url + "config", url + "login"):
        headers = requests.get(address, timeout=30).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["content-security-policy"] == "frame-ancestors 'self'"
        assert headers["referrer-policy"] == "same-origin"


def test_a_shared_app_refuses_jobs_above_its_budget_before_they_start(shared_app):
    """An evaluation estimated above the job limit (30 min by default when shared), a batch or
    input size above the shared caps: one line each, nothing started, the app still serving."""
    url, _ = shared_app
    client = app_client(url, auth=("teacher", "secret"))
    with pytest.raises(Exception, match=r"this evaluation would take about \d+ min; this server "
                                        r"allows 30 min a job"):
        client.predict(source="synthetic:binary:200", tables=["training"], seeds=1000,
                       training_steps=1000, api_name="/evaluate")
    for given, message in (({"batch": 1000}, "at most batch 64 on this server"),
                           ({"size": 1024}, "at most 512 px input size on this server")):
        with pytest.raises(Exception, match=message):
            client.predict(name=f"big-{len(message)}", **given, api_name="/train")
    report = client.predict(source="a server folder", folder="photos", tables=["similarity"],
                            backbones=["efficientnet_lite0"], limit=2, api_name="/evaluate")[0]
    assert "2 images" in report


def test_a_shared_app_stops_a_comparison_past_its_time_limit(shared_app):
    """ScoreCAM (1280 masked passes per image, ~40 s on this CPU) against a 5 s limit: refused in
    one line once its rate shows it, whether the page, the API or the downloads asked; the
    next comparison is served (no lock left held)."""
    url, _ = shared_app
    client = app_client(url, auth=("teacher", "secret"))
    for endpoint in ("/explain", "/downloads"):
        started = time.perf_counter()
        with pytest.raises(Exception, match=r"this comparison would take (about|over) \d+ s; this "
                                            r"server allows 5 s a comparison: untick the slow"):
            client.predict(example="coffee", methods=["ScoreCAM"], api_name=endpoint)
        assert time.perf_counter() - started < 20
    assert client.predict(example="coffee", methods=["GradCAM"], api_name="/explain")[2]


def test_a_shared_apps_sham_preview_is_bounded_like_its_runs(monkeypatch):
    """The Fine-tune tab's SHAM preview at 4000 px took 33 s of CPU: a shared app refuses it in
    one line, as it refuses such a run; 224 px is drawn."""
    from cam_studio.tabs.access import ACCESS
    from cam_studio.tabs.finetune import sham_preview
    monkeypatch.setattr(ACCESS, "remote", True)
    with pytest.raises(UserInputError, match="at most 512 px input size on this server"):
        sham_preview("efficientnet_lite0", 4000, 1.0)
    picture, caption = sham_preview("efficientnet_lite0", 224, 1.0)
    assert picture.ndim == 2 and "7×7 layer" in caption
