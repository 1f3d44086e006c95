"""The radiology viewer (viewer.js) in Chromium: a DICOM series uploaded through the page, processed by the
same code a worker runs, then scrolled slice by slice (keys, wheel, slider) and shown in window presets
whose rendered pixels differ."""
import pytest

from apps.medical.tests.web_helpers import planted_ct, process_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SLICES = 5


@pytest.fixture(autouse=True)
def _no_llm(settings, tmp_path):
    settings.LLM_ENABLED = False
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _image_digest(page) -> dict:
    """The shown image's size and a checksum of its pixels (drawn onto a canvas in the page)."""
    return page.evaluate("""() => {
        const img = document.getElementById('viewer-image');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let sum = 0;
        for (let i = 0; i < d.length; i += 4) { sum = (sum + d[i] * (i % 9973 + 1)) % 1000000007; }
        return {w: c.width, h: c.height, sum: sum, src: img.getAttribute('src')};
    }""")


def _wait_loaded(page, previous_src=None, contains=""):
    """Until the image shows a source other than ``previous_src`` (and holding ``contains``), loaded.

    ``contains`` matters under load: an earlier request (a slider move) may still land after the one the
    test is waiting for."""
    page.wait_for_function(
        """([prev, part]) => { const i = document.getElementById('viewer-image');
                       const src = i.getAttribute('src');
                       return src && src !== prev && src.includes(part) && i.complete
                              && i.naturalWidth > 0; }""", arg=[previous_src, contains])


def test_viewer_scrolls_through_slices_and_switches_window_presets(page, login, live_server, make_user,
                                                                   tmp_path):
    from apps.medical.models import Study

    make_user("rad-browser", "medical")
    login("rad-browser")
    files = []
    for i, data in enumerate(planted_ct(n=SLICES)):
        path = tmp_path / f"slice{i}.dcm"
        path.write_bytes(data)
        files.append(str(path))
    page.goto(f"{live_server.url}/medical/upload/")
    page.set_input_files("#upload-form input[type=file]", files)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/medical/uploads/**")
    batch_id = page.url.rstrip("/").split("/")[-1]
    [study] = process_upload(batch_id)  # what the worker does, in this process
    assert study.status in ("succeeded", "needs_review"), study.error_message  # a draft awaits sign-off

    page.goto(f"{live_server.url}{Study.objects.get(pk=study.pk).get_absolute_url()}")
    middle = SLICES // 2
    page.wait_for_selector(f"#viewer-pos:has-text('{middle + 1} / {SLICES}')")
    _wait_loaded(page)
    first = _image_digest(page)
    assert first["w"] >= 64 and first["h"] >= 64
    # a small image fills the frame by a whole factor, pixels kept sharp and the aspect kept
    page.wait_for_function("() => document.getElementById('viewer-image').hasAttribute('data-scale')")
    shown = page.evaluate("""() => { const i = document.getElementById('viewer-image');
        const r = i.getBoundingClientRect();
        return {w: r.width, h: r.height, nw: i.naturalWidth, nh: i.naturalHeight,
                scale: +i.getAttribute('data-scale'), rendering: getComputedStyle(i).imageRendering}; }""")
    assert shown["scale"] >= 2 and shown["scale"] == int(shown["scale"]), shown
    assert shown["w"] == shown["nw"] * shown["scale"] and shown["h"] == shown["nh"] * shown["scale"], shown
    assert shown["rendering"] == "pixelated", shown

    # keyboard: one slice down, then up twice
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(f"#viewer-pos:has-text('{middle + 2} / {SLICES}')")
    _wait_loaded(page, first["src"])
    after_key = _image_digest(page)
    assert after_key["src"] != first["src"]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    page.wait_for_selector(f"#viewer-pos:has-text('{middle} / {SLICES}')")

    # mouse wheel over the image scrolls too, and stops at the last slice
    page.hover("#viewer-image")
    for _ in range(SLICES + 2):
        page.mouse.wheel(0, 120)
    page.wait_for_selector(f"#viewer-pos:has-text('{SLICES} / {SLICES}')")
    assert page.input_value("#viewer-slice") == str(SLICES - 1)

    # the slider jumps to the first slice
    page.fill("#viewer-slice", "0")
    page.wait_for_selector(f"#viewer-pos:has-text('1 / {SLICES}')")
    _wait_loaded(page, after_key["src"])

    # window presets: the URL carries the preset and the server renders different pixels
    digests = {}
    for preset in ("lung", "bone"):
        before = page.get_attribute("#viewer-image", "src")
        page.select_option("#viewer-preset", preset)
        _wait_loaded(page, before, contains=f"preset={preset}")
        digests[preset] = _image_digest(page)
        assert f"preset={preset}" in digests[preset]["src"]
    assert digests["lung"]["sum"] != digests["bone"]["sum"]
