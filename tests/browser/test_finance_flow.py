"""Finance in Chromium: the application form submitted and scored (the page updates by itself), the review
queue's override refused without a comment and recorded with one, and the risk charts (finance.js)."""
import pytest

from apps.finance.tests.conftest import trained_scorecard

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scorecard(transactional_db):
    from apps.finance.services import credit_model_store

    return credit_model_store(trained=trained_scorecard(), data_sha256="0" * 64,
                              filename="german_credit_train.csv", activate=True, note="browser test")


def _run(job_id):
    """What the worker does with a queued assessment, in this process."""
    from apps.finance import services
    from apps.finance.models import Assessment
    from core.services import job_run_inline

    job_run_inline(model=Assessment, job_id=str(job_id), handler=services.assessment_process, worker="test")
    return Assessment.objects.get(pk=job_id)


def test_form_scores_then_review_queue_override_needs_a_comment(page, login, live_server, make_user,
                                                                scorecard, settings):
    make_user("fin-browser", "finance")
    login("fin-browser")

    # A short application: a report and three fields, submitted while the language model is on. It is then
    # switched off (as an operator may; no model service runs here), so nothing is extracted from the
    # report and the scorecard sees three inputs: incomplete, so the decision rule sends it to review.
    settings.LLM_ENABLED = True
    page.goto(f"{live_server.url}/finance/new/")
    page.fill("#id_application_id", "BROWSER-1")
    page.fill("#id_report", "The applicant asks for a loan to buy a car; no further documents yet.")
    page.fill("#id_credit_amount", "4500")
    page.fill("#id_duration_in_month", "24")
    page.select_option("#id_purpose", index=1)
    page.click("#submit-application")
    page.wait_for_url("**/finance/assessments/**")
    job_id = page.url.rstrip("/").split("/")[-1]
    page.wait_for_selector("#assessment-status")  # queued: the live status card polls

    settings.LLM_ENABLED = False
    job = _run(job_id)
    assert job.status == "needs_review", (job.status, job.error_message)
    # the status card sees the job finish and the page shows the result without a manual reload
    page.wait_for_selector("#final-decision", timeout=30000)
    assert page.locator("#review-reasons li").count() >= 1
    pd_text = page.inner_text("#pd")
    assert "%" in pd_text

    # Review queue: an override without a comment is refused with a message, nothing recorded.
    page.goto(f"{live_server.url}/finance/review/")
    form = page.locator(f"form.queue-review[action*='{job_id}']")
    form.locator("select[name=decision]").select_option("override")
    form.locator("select[name=final_risk_level]").select_option("3")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(".messages .msg-error").count() >= 1
    assert "comment" in page.inner_text(".messages").lower()
    job.refresh_from_db()
    assert job.final_decision == ""

    # With a comment it is recorded: the application leaves the queue and shows the analyst's decision.
    page.goto(f"{live_server.url}/finance/review/")
    form = page.locator(f"form.queue-review[action*='{job_id}']")
    form.locator("select[name=decision]").select_option("override")
    form.locator("select[name=final_risk_level]").select_option("3")
    form.locator("input[name=comment]").fill("Income not documented; high risk.")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(f"form.queue-review[action*='{job_id}']").count() == 0
    job.refresh_from_db()
    assert job.final_decision == "overridden" and job.final_risk_level == 3
    page.goto(f"{live_server.url}/finance/assessments/{job_id}/")
    assert "3" in page.inner_text("#final-decision .risk")

    # The overview's charts (finance.js) count this application.
    page.goto(f"{live_server.url}/finance/")
    page.wait_for_function("() => typeof Chart !== 'undefined'"
                           " && Chart.getChart(document.getElementById('risk-level-chart'))")
    totals = page.evaluate("""() => {
        const sum = (id) => Chart.getChart(document.getElementById(id)).data.datasets
            .map(d => d.data.reduce((a, b) => a + (b || 0), 0));
        return {levels: sum('risk-level-chart'), pd: sum('pd-histogram')}; }""")
    assert totals["levels"][0] == 1 and totals["levels"][3] == 1, totals  # combined, final (after review)
    assert totals["pd"] == [1], totals
