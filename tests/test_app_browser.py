"""The app in a real browser: Playwright driving Debian's chromium (never a downloaded one)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"

@contextmanager
def app_page(url: str, width: int = 1600, height: int = 1300,
             posted: list[str] | None = None) -> Iterator:
    """A page of the app at ``url`` in headless Debian chromium, in a window of that size;
    ``posted`` collects the bodies of the page's POST requests from the start."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                             headless=True)
        page = browser.new_page(viewport={"width": width, "height": height})
        if posted is not None:
            page.on("request", lambda request: posted.append(request.post_data or "")
                    if request.method == "POST" else None)
        page.goto(url, wait_until="domcontentloaded")
        try:
            yield page
        finally:
            browser.close()


pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


TIME_LEFT = re.compile(r"about \d+ (s|min) left")  # a progress line's estimate


def faithfulness_in_the_table_csv(page) -> str:
    """Tick faithfulness: a progress bar names its stage, counts the maps and says the time
    left; then the table CSV offered for download has the deletion rows. Returns the CSV's
    address."""
    from playwright.sync_api import expect

    body = page.locator("body")
    page.locator("#faithfulness input").check()
    expect(body).to_contain_text("map-passes done", timeout=60_000)
    expect(body).to_contain_text(TIME_LEFT, timeout=60_000)
    expect(body).not_to_contain_text("map-passes done", timeout=180_000)
    page.get_by_role("button", name="Prepare downloads").click()
    table_csv = page.locator("a[href$='.csv']").first
    expect(table_csv).to_be_attached(timeout=60_000)
    address = table_csv.get_attribute("href")
    assert "deletion AUC" in page.request.get(address).text()
    return address


def test_compare_an_example_in_the_browser(app_url, tmp_path):
    from playwright.sync_api import expect

    with app_page(app_url) as page:
        body = page.locator("body")
        # The page computes the default example on load; wait for it before interacting.
        expect(body).to_contain_text("Egyptian cat", timeout=120_000)
        # Pick an example and a registry checkpoint as B, then compare.
        page.locator("#examples img").nth(1).click()  # the coffee thumbnail
        expect(page.get_by_label("…or a bundled example (used when no image)")).to_have_value(
            "coffee")
        page.get_by_label("Checkpoint B").click()
        page.get_by_role("option", name="lite0-half").click()  # from the test's registry
        expect(page.get_by_label("Checkpoint B")).to_have_value("lite0-half")
        page.get_by_role("button", name="Compare").click()
        # The table's rows exist only once A and B have been compared on the new example.
        expect(body).to_contain_text("susceptibility: MSE A vs B", timeout=120_000)
        expect(body).to_contain_text("espresso", timeout=120_000)
        expect(page.locator("#grid img").first).to_be_visible(timeout=120_000)
        page.get_by_role("button", name="Prepare downloads").click()
        expect(page.locator("a[href*='coffee-B.npz']").first).to_be_attached(timeout=60_000)
        # (faithfulness, its progress bar and its CSV: the reviewer's flow on a phone below)
        text = page.inner_text("body")
        for name in ("GradCAM++", "LSEDiffGradCAM", "DifferenceSalience", "susceptibility"):
            assert name in text
        assert "e-0" in text  # MSE values in the table
        # Outputs fade while a request is pending: wait until none is, for a clear screenshot.
        expect(page.locator(".pending")).to_have_count(0, timeout=120_000)
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert (tmp_path / "page.png").stat().st_size > 50_000


def test_the_reviewer_flow_on_a_phone(app_url, tmp_path):
    """At 390 px: an uploaded photo, a class typed by name, a colour-blind-safe colour map, the
    downloads, faithfulness with its progress bar; nothing wider than the screen."""
    from playwright.sync_api import expect

    from cam_studio.data.examples import example_image

    photo = tmp_path / "my_cat.png"
    example_image("chelsea").resize((300, 200)).save(photo)
    with app_page(app_url, width=390, height=844) as page:
        body = page.locator("body")
        expect(body).to_contain_text("Egyptian cat", timeout=120_000)
        page.locator("#compare-controls input[type=file]").first.set_input_files(str(photo))
        grid = page.locator("#grid img").first
        target = page.get_by_label(re.compile("^Target class"))
        target.fill("tiger cat")
        target.press("Enter")
        expect(grid).to_have_attribute("alt", re.compile("tiger cat"), timeout=120_000)
        page.get_by_label("Colour map").click()
        page.get_by_role("option", name=re.compile("^viridis")).click()
        expect(page.locator(".pending")).to_have_count(0, timeout=120_000)
        assert "my_cat" in faithfulness_in_the_table_csv(page)
        no_sideways_scroll(page)


def test_a_mistyped_class_gives_one_line_and_the_page_keeps_working(app_url):
    """A class name that does not exist: one line says so, the comparison shows the top-1
    instead (no error overlay, nothing stuck), and the next class typed works."""
    from playwright.sync_api import expect

    with app_page(app_url, width=1440, height=900) as page:
        body = page.locator("body")
        expect(body).to_contain_text("Egyptian cat", timeout=120_000)
        target = page.get_by_label(re.compile("^Target class"))
        target.fill("not a class")
        target.press("Enter")
        expect(body).to_contain_text("neither a class index nor a class name", timeout=60_000)
        expect(body).to_contain_text("showing the default class instead")
        expect(page.locator(".pending")).to_have_count(0, timeout=120_000)
        grid = page.locator("#grid img").first
        expect(grid).to_be_visible()
        expect(grid).to_have_attribute("alt", re.compile("Egyptian cat"))
        assert page.locator("#grid .error, #table .error").count() == 0
        target.fill("tiger cat")
        target.press("Enter")
        expect(grid).to_have_attribute("alt", re.compile("tiger cat"), timeout=120_000)
        # Tab goes from one class picker to the next control: never to <body> or an option list
        target.focus()
        reached = []
        for _ in range(4):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.tagName"))
        assert reached[0] == "INPUT" and "BODY" not in reached and "UL" not in reached, reached
        assert page.evaluate("document.activeElement.getAttribute('aria-label')") != ""


def test_fine_tune_in_the_browser(app_url):
    """Start a short run from the Fine-tune tab, watch it finish, find it in Compare's picker."""
    from playwright.sync_api import expect

    with app_page(app_url) as page:
        page.get_by_role("tab", name="Fine-tune").click()
        expect(page.get_by_text("SHAM at tiny_resnet's 8×8 layer")).to_be_visible(timeout=60_000)
        page.get_by_label("Checkpoint name").fill("browser-run")
        page.get_by_label("Steps").fill("3")
        page.get_by_label("Batch").fill("8")
        page.get_by_role("button", name="Start").click()
        expect(page.locator("#train-status")).to_contain_text("Done: browser-run saved",
                                                             timeout=120_000)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOT.parent / "finetune.png"), full_page=False)
        page.get_by_role("tab", name="Compare").click()
        page.get_by_label("Backbone").first.click()
        page.get_by_role("option", name="tiny_resnet").click()
        page.get_by_label("Checkpoint B").click()
        expect(page.get_by_role("option", name="browser-run (sham loss; 3 steps)")).to_be_visible()


def test_evaluate_in_the_browser(app_url):
    """The Evaluate tab's button on a fresh page, nothing changed: both default tables on the
    examples (five), the box plot and the report's zip. (It takes 2–5 s, too short for a time
    left to show: bench --estimates measures its progress lines, the faithfulness test below
    sees one on the page.)"""
    from playwright.sync_api import expect

    with app_page(app_url) as page:
        page.get_by_role("tab", name="Evaluate").click()
        page.get_by_role("button", name="Run the evaluation").click()
        body = page.locator("body")
        expect(body).to_contain_text("Similarity to GradCAM / GradCAM++", timeout=300_000)
        expect(body).to_contain_text("Susceptibility to passive fooling")
        expect(body).to_contain_text("MeanDiffGradCAM++")
        expect(page.locator("a[href*='cams-evaluation']").first).to_be_attached(timeout=30_000)
        expect(page.locator("img[src*='similarity_efficientnet_lite0']").first).to_be_visible(
            timeout=30_000)
        text = page.inner_text("body")
        assert "(5 images)" in text and "e-0" in text  # mean ± std MSEs of the five examples
        expect(page.locator(".pending")).to_have_count(0, timeout=60_000)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOT.parent / "evaluate.png"), full_page=False)


def no_sideways_scroll(page) -> None:
    """The page is no wider than its window (nothing to scroll sideways on a phone)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_the_teacher_flow_both_cases_verdict_slider_link_and_phone(app_url):
    """The teacher's walk: each ▶ case in one click with its verdict (computed, in plain words),
    one method large as a labelled A | B slider, a link that reopens the comparison with its
    colour map and slider method; on a phone the result comes first and nothing overflows."""
    from playwright.sync_api import expect

    with app_page(app_url, width=1440, height=900) as page:
        body = page.locator("body")
        expect(body).to_contain_text("Egyptian cat", timeout=120_000)
        expect(page.locator("#intro")).to_contain_text("Salience-Hoax Activation Map")
        verdict = page.locator("#verdict")
        page.get_by_role("button", name="Show the constructed fool").click()
        expect(verdict).to_contain_text("sees through", timeout=120_000)
        expect(verdict).to_contain_text("The prediction stayed")
        expect(verdict).to_contain_text("common-mode share of the change is 1.00")
        page.get_by_role("button", name="Show an all-class fool").click()
        expect(page.locator("#grid img").first).to_have_attribute(
            "alt", re.compile("B: sham-all-classes"), timeout=120_000)
        expect(page.locator(".pending")).to_have_count(0, timeout=120_000)
        expect(verdict).to_contain_text(re.compile("resists part of|fooled as GradCAM is"))
        page.get_by_role("button", name="Show a one-class fool").click()
        expect(page.locator("#grid img").first).to_have_attribute(
            "alt", re.compile("B: sham-one-class"), timeout=120_000)
        expect(page.locator(".pending")).to_have_count(0, timeout=120_000)
        expect(verdict).to_contain_text(re.compile("fooled as GradCAM is|resists part of"))
        expect(page.locator("#slider img")).to_have_count(2, timeout=60_000)
        expect(page.get_by_text("A (left) | B (right)")).to_be_visible()
        page.get_by_label("Colour map").click()
        page.get_by_role("option", name=re.compile("^cividis")).click()
        link = page.locator("#link textarea")
        expect(link).to_have_value(re.compile(r"colours=cividis"), timeout=120_000)
        assert "b=sham-one-class-efficientnet_lite0" in link.input_value()
        no_sideways_scroll(page)
        expect(page.locator(".pending")).to_have_count(0, timeout=120_000)
        page.locator("#verdict").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT.parent / "teaching.png"), full_page=False)
        address = link.input_value()
    assert address.startswith(app_url + "?example=chelsea")
    with app_page(address.replace("chelsea", "coffee") + "&view=MeanDiffGradCAM&large=1",
                  width=390, height=844) as phone:
        body = phone.locator("body")
        expect(body).to_contain_text("B: sham-one-class-efficientnet_lite0", timeout=120_000)
        expect(body).to_contain_text("espresso", timeout=60_000)
        expect(phone.get_by_label("Colour map")).to_have_value(re.compile("cividis"))
        expect(phone.get_by_label("One method large, A | B (drag the slider; needs B)")
               ).to_have_value("MeanDiffGradCAM")
        grid = phone.locator("#grid img").first
        expect(grid).to_be_visible(timeout=60_000)
        assert grid.get_attribute("alt")  # the result image says what it is
        expect(phone.locator(".pending")).to_have_count(0, timeout=120_000)
        slider = phone.locator("#slider img")
        expect(slider.first).to_have_attribute("alt", re.compile("A \\(left\\)"), timeout=60_000)
        unnamed = phone.evaluate("[...document.querySelectorAll('.gradio-container img')]"
                                 ".filter((img) => !img.getAttribute('alt')).length")
        assert unnamed == 0  # every image on the page says what it is
        no_sideways_scroll(phone)
        phone.evaluate("window.scrollTo(0, 0)")
        assert phone.locator("#cases").bounding_box()["y"] < 400  # the demo at the top
        assert grid.bounding_box()["y"] < 844 * 1.5  # the result before the controls
        controls = phone.locator("#compare-controls").bounding_box()
        assert controls["y"] > grid.bounding_box()["y"]
        phone.screenshot(path=str(SCREENSHOT.parent / "phone.png"), full_page=False)


def test_a_link_asks_only_for_comparisons_of_its_own_checkpoints(app_url):
    """Opening a link, every comparison the page asks the server for is of the link's B. (The
    pickers once got their choices with their values; a Dropdown applies such a value after the
    other settings' change events have asked for comparisons, which were then of the default B,
    and whichever answered last was shown: a phone opening a teacher's link saw A alone.)"""
    import dataclasses
    import json

    from playwright.sync_api import expect

    from cam_studio.tabs.compare import CompareRequest
    fields = [field.name for field in dataclasses.fields(CompareRequest)]
    fooled = "sham-one-class-efficientnet_lite0"
    posted: list[str] = []
    with app_page(f"{app_url}?example=coffee&b={fooled}&colours=cividis&large=1",
                  width=390, height=844, posted=posted) as phone:
        expect(phone.locator("body")).to_contain_text(f"B: {fooled}", timeout=120_000)
        expect(phone.locator(".pending")).to_have_count(0, timeout=120_000)
    asked = []
    for body in posted:
        data = json.loads(body).get("data") if body.startswith("{") else None
        if isinstance(data, list) and len(data) in (len(fields), len(fields) + 1) \
                and "coffee" in data:  # a comparison, the slider's or the link's (view first)
            asked.append(data[fields.index("checkpoint_b") + len(data) - len(fields)])
    assert asked and set(asked) == {fooled}


def test_every_tab_fits_a_phone(app_url):
    """At 390 px every tab's page is no wider than the screen, and its primary button is there."""
    from playwright.sync_api import expect

    with app_page(app_url, width=390, height=844) as page:
        expect(page.locator("body")).to_contain_text("Egyptian cat", timeout=120_000)
        for tab, button in (("Compare", "Compare"), ("Fine-tune", "Start"),
                            ("Evaluate", "Run the evaluation")):
            page.get_by_role("tab", name=tab).click()
            expect(page.get_by_role("button", name=button, exact=True)).to_be_visible()
            no_sideways_scroll(page)


def test_fine_tune_defaults_survive_a_reload_and_never_clash(app_url):
    """Start with the defaults but 40 steps (pressing Start on the whole default run is the
    walk-through's to do, not CI's); reload mid-run: the page finds its run again (name, status,
    curves, Cancel); once it is saved the name box offers the next free name, so pressing
    Start again loses nothing."""
    from playwright.sync_api import expect

    with app_page(app_url, width=1440, height=900) as page:
        page.get_by_role("tab", name="Fine-tune").click()
        name = page.get_by_label("Checkpoint name")
        expect(name).to_have_value(re.compile(r"^my-sham-model"), timeout=60_000)
        chosen = name.input_value()
        status = page.locator("#train-status")
        page.get_by_label("Steps").fill("40")
        page.get_by_role("button", name="Start").click()
        expect(status).to_contain_text("Training", timeout=60_000)
        page.reload(wait_until="domcontentloaded")
        page.get_by_role("tab", name="Fine-tune").click()
        expect(status).to_contain_text(re.compile("Training|Done"), timeout=60_000)
        expect(page.get_by_label("Checkpoint name")).to_have_value(chosen)
        expect(status).to_contain_text(f"Done: {chosen} saved", timeout=300_000)
        expect(page.locator("#loss-plot img, #loss-plot svg, #loss-plot canvas").first
               ).to_be_visible()
        expect(page.get_by_label("Checkpoint name")).to_have_value(f"{chosen}-2",
                                                                    timeout=30_000)
        page.screenshot(path=str(SCREENSHOT.parent / "finetune-reattached.png"), full_page=False)


def own_backbone(page, name: str):
    """Once the page's first comparison is shown: type backbone ``name``, open the uploads; the
    backbone box."""
    from playwright.sync_api import expect

    expect(page.locator("body")).to_contain_text("Egyptian cat", timeout=120_000)
    box = page.get_by_label(re.compile("^Backbone"))
    box.click()
    box.fill(name)
    box.press("Enter")
    page.get_by_text("Upload your own checkpoints").click()
    return box


def test_your_own_model_on_a_phone_pth_class_names_size_and_layer(app_url, tmp_path):
    """The researcher's walk at phone width: a .pth state dict of a 3-class model (read as
    tensors only), its class names, input size, normalisation and layer typed in the page; the
    predictions use the names; a wrong mean is one line in the page's words; another backbone
    clears the uploads."""
    import timm
    from playwright.sync_api import expect

    torch.manual_seed(0)
    weights = tmp_path / "my_model.pth"
    torch.save(timm.create_model("resnet18", num_classes=3).state_dict(), weights)
    with app_page(app_url, width=390, height=844) as page:
        body = page.locator("body")
        box = own_backbone(page, "resnet18")
        page.locator("#class-names textarea").fill("heron\nstork\ncrane")
        page.locator("#input-size input").fill("160")
        page.locator("#layer textarea").fill("layer3")
        page.locator("#mean textarea").fill("0.5, 0.5")
        page.locator("#std textarea").fill("0.5, 0.5, 0.5")
        page.locator("#upload-a input[type=file]").set_input_files(str(weights))
        verdict = page.locator("#verdict")
        expect(verdict).to_contain_text("is not three numbers", timeout=120_000)
        expect(verdict).to_contain_text("Mean R, G, B")  # the page's words, not a flag
        assert "--mean" not in body.inner_text()
        page.locator("#mean textarea").fill("0.5, 0.5, 0.5")
        page.locator("#mean textarea").blur()
        expect(body).to_contain_text("A: my_model.pth", timeout=120_000)
        expect(page.locator("#grid img").first).to_have_attribute(
            "alt", re.compile("heron|stork|crane"), timeout=120_000)
        expect(body).to_contain_text("stork", timeout=60_000)
        expect(verdict).not_to_contain_text("Not updated")
        no_sideways_scroll(page)
        page.wait_for_timeout(9_000)  # the warnings fade
        page.locator("#grid").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT.parent / "own-model-phone.png"), full_page=False)
        box.click()
        box.fill("efficientnet_lite0")
        box.press("Enter")
        expect(page.locator("#upload-a")).not_to_contain_text("my_model.pth", timeout=60_000)


def test_a_transformer_by_name_with_uploaded_weights(app_url, tmp_path):
    """A timm ViT typed into the Backbone box, its fine-tuned weights (3 classes, names in the
    safetensors metadata) uploaded as A: the maps come from the last block's norm1, and the
    classic CAM, which a ViT head does not have, is left out."""
    import json

    import timm
    from playwright.sync_api import expect
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = tmp_path / "skin_vit.safetensors"
    save_file(timm.create_model("vit_tiny_patch16_224", num_classes=3).state_dict(), str(weights),
              metadata={"class_names": json.dumps(["benign", "malignant", "unclear"])})
    with app_page(app_url) as page:
        body = page.locator("body")
        own_backbone(page, "vit_tiny_patch16_224")
        page.locator("#upload-a input[type=file]").set_input_files(str(weights))
        expect(body).to_contain_text("A: skin_vit.safetensors", timeout=120_000)
        expect(body).to_contain_text("malignant", timeout=60_000)
        table = page.locator("#table")
        expect(table).to_contain_text("MeanDiffGradCAM", timeout=60_000)
        cells = [cell.strip() for cell in re.split(r"[\t\n]", table.inner_text())]
        assert "GradCAM" in cells and "CAM" not in cells, cells


def test_the_report_to_attach_opens_offline(app_url, tmp_path):
    """The downloads' HTML report of a comparison (an uploaded photo, A clean vs B a shipped
    fool): it names the image's SHA-256 (computed here from the upload) and each checkpoint's,
    and opens in Chromium with the network off — the grid drawn, the verdict and table there."""
    import hashlib

    from gradio_client import handle_file
    from playwright.sync_api import sync_playwright

    from cam_studio.benchmarks.serving import app_client
    from cam_studio.data.examples import example_image
    from cams.checkpoints import find_checkpoint
    photo = tmp_path / "cat.png"
    example_image("chelsea").save(photo)
    files = app_client(app_url).predict(
        handle_file(str(photo)), checkpoint_b="sham-one-class-efficientnet_lite0",
        methods=["GradCAM", "MeanDiffGradCAM"], api_name="/downloads")
    report = next(Path(path) for path in files if path.endswith("-report.html"))
    text = report.read_text(encoding="utf-8")
    from PIL import Image
    assert hashlib.sha256(Image.open(photo).convert("RGB").tobytes()).hexdigest() in text
    assert find_checkpoint("sham-one-class-efficientnet_lite0").metadata["weights_sha256"] in text
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                             headless=True)
        context = browser.new_context(offline=True)
        page = context.new_page()
        page.goto(report.as_uri())
        assert page.evaluate("document.querySelector('img').naturalWidth") > 500  # drawn
        body = page.inner_text("body")
        assert "Verdict" in body and "susceptibility: MSE A vs B" in body
        assert "Egyptian cat" in body and "MeanDiffGradCAM" in body
        browser.close()


def test_a_case_pressed_as_the_page_opens_keeps_its_checkpoints_on_a_phone(app_url):
    """A ▶ case pressed at once (a phone's slower page) is not undone by the page's own opening
    settings: the cases wait for them, and a refresh of the pickers answers with choices only
    (the B picker read 'none' when the opening refresh, holding the values it read before the
    case, landed after it: 3 of 8 page loads on a busy machine, 0 of 12 since)."""
    from playwright.sync_api import expect

    with app_page(app_url, width=390, height=844) as phone:
        phone.get_by_role("button", name="Show a one-class fool").click()  # waits until enabled
        expect(phone.locator("#grid img").first).to_have_attribute(
            "alt", re.compile("B: sham-one-class"), timeout=120_000)
        expect(phone.get_by_label("Checkpoint B")).to_have_value(re.compile("^sham-one-class"))
