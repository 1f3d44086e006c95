"""The machine page's charts (machine.js, Chart.js) in Chromium: sensor data uploaded through the page,
predicted by the code a worker runs, then the remaining-life, probability and sensor charts drawn, and a
sensor chart added from the picker."""
import pytest

from apps.manufacturing.tests.fixtures import active_model, fd001_frame, trained_model_bytes, wide_csv  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_llm(settings, tmp_path):
    settings.LLM_ENABLED = False
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _chart_points(page, canvas_id: str) -> int:
    """Data points Chart.js holds for a canvas (0 when no chart was drawn on it)."""
    return page.evaluate("""(id) => {
        const c = document.getElementById(id); const ch = c && Chart.getChart(c);
        return ch ? ch.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0; }""", canvas_id)


def test_machine_charts_draw_and_the_sensor_picker_adds_one(page, login, live_server, make_user, tmp_path,
                                                             active_model, fd001_frame):  # noqa: F811
    from apps.manufacturing import services
    from apps.manufacturing.models import Machine, Prediction
    from core.models import JobStatus
    from core.services import job_run_inline

    make_user("eng-browser", "manufacturing")
    login("eng-browser")
    csv_path = tmp_path / "fleet.csv"
    csv_path.write_bytes(wide_csv(fd001_frame, {91: 120, 93: 60}))
    page.goto(f"{live_server.url}/manufacturing/upload/")
    page.set_input_files("#upload-form input[type=file]", str(csv_path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/manufacturing/uploads/**")
    batch_id = page.url.rstrip("/").split("/")[-1]
    services.batch_ingest(batch_id=batch_id)  # what the worker does, in this process
    for p in Prediction.objects.filter(batch_id=batch_id, status=JobStatus.QUEUED):
        job_run_inline(model=Prediction, job_id=str(p.pk), handler=services.prediction_process, worker="test")
    machine = Machine.objects.get(machine_id="ENG-91")
    assert machine.failure_probability is not None

    page.goto(f"{live_server.url}/manufacturing/machines/{machine.machine_id}/")
    page.wait_for_function("() => typeof Chart !== 'undefined'"
                           " && Chart.getChart(document.getElementById('chart-rul'))")
    assert _chart_points(page, "chart-rul") > 1
    assert _chart_points(page, "chart-probability") > 1
    drawn = page.eval_on_selector_all("#sensor-charts .sensor-chart", "els => els.map(e => e.dataset.sensor)")
    assert 1 <= len(drawn) <= 4
    for name in drawn:
        points = page.evaluate("""(n) => Chart.getChart(document.querySelector(
            `.sensor-chart[data-sensor="${n}"] canvas`)).data.datasets[0].data.length""", name)
        assert points == 120, (name, points)  # every cycle of the upload is on the chart

    options = page.eval_on_selector_all("#sensor-select option", "os => os.map(o => o.value).filter(Boolean)")
    extra = next(name for name in options if name not in drawn)
    page.select_option("#sensor-select", extra)
    page.wait_for_selector(f'.sensor-chart[data-sensor="{extra}"] canvas')
    assert page.locator("#sensor-charts .sensor-chart").count() == len(drawn) + 1
