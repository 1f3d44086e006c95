"""What the manufacturing pages show beside the stored numbers: stored English texts (alert reasons, model
notes, ingest problems) in the page's language, one number format, a badge that says why, a one-point
sparkline, a saturated probability, the training metrics table, the delimiter in words."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from apps.manufacturing import decisions
from apps.manufacturing.models import Alert, Machine, Prediction, TrainingRun
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.texts import text_display
from apps.manufacturing.views import sparkline_points
from core.models import Batch, JobStatus

pytestmark = pytest.mark.django_db

SATURATED = {
    "mode": "full", "failure_probability": 1.0, "horizon": 30, "horizon_unit": "cycles", "rul_estimate": 9.3,
    "rul_unit": "cycles", "rul_capped_at": 125, "anomaly_score": 0.6263, "anomaly_threshold": 0.5939,
    "is_anomalous": True,
    "anomalies": [{"at": 150, "score": 0.609, "sensor": "sensor_11", "deviation_sigma": 3.55},
                  {"at": 152, "score": 0.611, "sensor": "sensor_4", "deviation_sigma": 3.21}],
    "drivers": [{"sensor": "sensor_11", "direction": "up", "contribution": 0.0, "contribution_logodds": 2.68,
                 "deviation_sigma": 6.63, "rul_effect": 6.2, "text_en": "sensor_11 drifts.",
                 "text_zh": "漂移。"},
                {"sensor": "sensor_2", "direction": "up", "contribution": 0.0, "contribution_logodds": 2.53,
                 "deviation_sigma": 2.85, "rul_effect": 1.6, "text_en": "sensor_2 drifts.",
                 "text_zh": "漂移。"}],
    "history": [{"at": 180, "failure_probability": 1.0, "rul_estimate": 9.3, "anomaly_score": 0.6263}],
    "notes": ["columns not used by the model: sensor_1, sensor_5"],
    "llm": {"status": "disabled", "message": "off"}, "combined": {}, "model_label": "m (1)",
}


def _reasons() -> list[str]:
    """Real reasons, as the alert rule writes them (a change of wording there shows up here)."""
    confirmed = decisions.alert_decision({"failure_probability": 0.97, "rul_estimate": 8.4,
                                          "horizon_unit": "cycles"}, [0.9])
    first = decisions.alert_decision({"failure_probability": 0.6, "rul_estimate": 80,
                                      "horizon_unit": "cycles"})
    return confirmed["reasons"] + first["reasons"]


def test_alert_reasons_notes_and_ingest_problems_are_shown_in_the_page_language():
    reasons = _reasons()
    assert any("≥" in r for r in reasons) and len(reasons) >= 3
    with translation.override("zh-hans"):
        shown = [text_display(r) for r in reasons]
        assert all("failure probability" not in s and "remaining life" not in s and "critical:" not in s
                   for s in shown), shown
        assert any("故障概率 97.0% ≥ 50.0%" in s for s in shown), shown
        assert any(s.startswith("严重：") for s in shown) and any("等待确认" in s for s in shown)
        assert text_display("columns not used by the model: sensor_1, sensor_5") == \
            "模型未使用的列：sensor_1, sensor_5"
        assert text_display("sensor sensor_1 never changes (always 518.67); excluded from features") == \
            "sensor_1 始终不变（恒为 518.67）；已从特征中排除"
        assert text_display("30 cycles") == "30 个周期"
        assert text_display("something new happened") == "something new happened"  # unknown: as it is
    with translation.override("en"):
        assert text_display(reasons[0]).startswith("failure probability 97.0% ≥ 50.0%")
        assert text_display("sensor sensor_1 never changes (always 518.67); excluded from features") == \
            "sensor_1 never changes (always 518.67); excluded from the features"  # no "sensor sensor_1"


def test_a_sparkline_needs_two_points():
    assert sparkline_points([0.4]) == "" and sparkline_points([]) == ""
    assert sparkline_points([None, 0.3]) == ""
    assert sparkline_points([0.0, 1.0]) == "0.0,24.0 120.0,0.0"


@pytest.fixture
def saturated_machine(engineer):
    machine = Machine.objects.create(machine_id="ENG-S", horizon=30, horizon_unit="cycles", time_axis="cycle")
    result = dict(SATURATED, alert={"level": "critical", "reasons": _reasons()[:2], "lead_time": 9.3,
                                    "lead_time_unit": "cycles", "recommendation": "Inspect now."})
    prediction = Prediction.objects.create(
        owner=engineer, machine=machine, status=JobStatus.SUCCEEDED, failure_probability=1.0, horizon=30,
        horizon_unit="cycles", rul_estimate=9.3, anomaly_score=0.6263, is_anomalous=True, result=result,
        finished_at=timezone.now(), alert_level="critical")
    Machine.objects.filter(pk=machine.pk).update(
        last_prediction=prediction, failure_probability=1.0, rul_estimate=9.3, anomaly_score=0.6263,
        is_anomalous=True, alert_level="critical", last_predicted_at=timezone.now(), last_reading_at="180")
    Alert.objects.create(machine=machine, prediction=prediction, level="critical", reasons=_reasons()[:2],
                         failure_probability=1.0, lead_time=9.3, lead_time_unit="cycles")
    return machine


def test_fleet_shows_one_point_as_a_value_and_says_why_it_is_anomalous(client, engineer, saturated_machine):
    client.force_login(engineer)
    html = client.get(reverse("manufacturing:index")).content.decode()
    row = html.split('data-machine="ENG-S"')[1].split("</tr>")[0]
    assert "<polyline" not in row and "spark-value" in row and "100.0%" in row and "one point" in row
    assert "anomaly score 0.626 above the threshold 0.594" in row
    assert "most deviant sensor: sensor_4 (3.2σ from its early life)" in row  # the latest flagged step
    assert 'title="anomaly score 0.626' in row and "cycle 180" in row


def test_a_saturated_probability_is_said_and_drivers_use_the_log_odds_scale(client, engineer,
                                                                           saturated_machine):
    client.force_login(engineer)
    html = client.get(reverse("manufacturing:machine_detail", args=["ENG-S"])).content.decode()
    assert 'id="saturated"' in html and "saturated at 100.0%" in html
    assert "Contribution (log-odds)" in html and "2.68" in html and "+6.2 cycles" in html
    assert "0.000" not in html.split('id="drivers-table"')[1].split("</table>")[0]
    zh = client.get(reverse("manufacturing:machine_detail", args=["ENG-S"]),
                    HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "校准概率已饱和于 100.0%" in zh and "模型未使用的列" in zh
    box = zh.split('id="alert-box"')[1].split("</section>")[0]
    assert "故障概率 97.0% ≥ 50.0%" in box and "failure probability" not in box
    # an older result without the log-odds scale says "saturated" instead of a row of zeros
    stored = dict(SATURATED, drivers=[{k: v for k, v in d.items() if k != "contribution_logodds"}
                                      for d in SATURATED["drivers"]])
    Prediction.objects.filter(machine__machine_id="ENG-S").update(result=stored)
    html = client.get(reverse("manufacturing:machine_detail", args=["ENG-S"])).content.decode()
    table = html.split('id="drivers-table"')[1].split("</table>")[0]
    assert table.count(">saturated<") == 2 and "0.0%" not in table


def test_alerts_page_in_chinese_translates_reasons_and_keeps_short_cells_on_one_line(client, engineer,
                                                                                     saturated_machine):
    client.force_login(engineer)
    html = client.get(reverse("manufacturing:alerts"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    reasons = html.split('class="alert-reasons"')[1].split("</ul>")[0]
    assert "故障概率 97.0% ≥ 50.0%" in reasons and "failure probability" not in reasons
    assert '<td class="nowrap"><span class="status status-failed">严重</span></td>' in html
    assert '<td class="nowrap">未处理' in html and "100.0%" in html


def test_batch_page_names_the_delimiter_and_reads_the_warnings(client, engineer):
    batch = Batch.objects.create(
        owner=engineer, app="manufacturing", kind=Prediction.job_type, status=Batch.Status.DONE,
        original_filename="fleet.csv", item_total=0,
        warnings=["sensor sensor_1 never changes (always 518.67); excluded from features"],
        options={"ingest": {"format": "wide", "delimiter": ",", "time_axis": "cycle", "readings": 8760,
                            "readings_kept": 8760}})
    client.force_login(engineer)
    url = reverse("manufacturing:batch_detail", args=[batch.pk])
    html = client.get(url).content.decode()
    assert "Read as wide form (delimiter: comma, time axis: cycle); 8,760 readings, 8,760 kept." in html
    assert "sensor sensor_1" not in html and "sensor_1 never changes" in html
    zh = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "分隔符：逗号" in zh and "sensor_1 始终不变" in zh and ",，" not in zh
    # while the file is read, no "0 of 0 done"
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.PARSING)
    live = client.get(reverse("manufacturing:batch_results", args=[batch.pk])).content.decode()
    assert "Reading the file…" in live and "0 of 0" not in live


def test_training_results_are_a_metrics_table(client, engineer):
    run = TrainingRun.objects.create(
        owner=engineer, status=JobStatus.SUCCEEDED, name="plant", original_filename="train.txt",
        finished_at=timezone.now(),
        result={"model_version": "abc123", "machines": 100, "rows": 20631, "horizon": 30,
                "horizon_unit": "cycles",
                "metrics": {"oof_auc": 0.9912, "oof_brier": 0.01523, "calibration_folds": 3,
                            "train_rmse_rul_capped": 2.295, "positive_rate": 0.1553},
                "sensors": ["sensor_2", "sensor_3"], "activated": True, "training_seconds": 24.68})
    client.force_login(engineer)
    html = client.get(reverse("manufacturing:training_detail", args=[run.pk])).content.decode()
    assert "{&#x27;" not in html and "{'model_version'" not in html  # no raw dict
    table = html.split('id="training-result"')[1]
    assert 'data-metric="oof_auc"' in table and "0.991" in table and "0.0152" in table and "15.5%" in table
    assert "100 machines, 20,631 steps" in table and "24.7 s" in table
    zh = client.get(reverse("manufacturing:training_detail", args=[run.pk]),
                    HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "Brier 分数" in zh and "折外" in zh
