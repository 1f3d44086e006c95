"""The one batch-ingest routine every app's ``<app>.batch_ingest`` task uses (``core.services.batch_ingest``):
the outcome rule, bulk creation and enqueueing, a rejected file, a reader that crashes, the attempts cap."""
import pytest
from django.db import OperationalError

from core.models import Batch, DiagnosticJob, JobStatus
from core.services import BatchItems, BatchRejected, batch_ingest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batch(make_user):
    return Batch.objects.create(owner=make_user("ingest_owner", "admin"), app="finance",
                                kind="core.diagnostic", original_filename="people.csv")


@pytest.fixture
def sent(monkeypatch):
    """Task ids sent to the broker (on commit)."""
    from types import SimpleNamespace

    from core.services import jobs

    ids: list[str] = []
    broker = SimpleNamespace(tasks={}, send_task=lambda name, args: ids.append(args[0]))
    monkeypatch.setattr(jobs, "current_app", broker)
    return ids


def _items(batch, good: int, bad: int):
    def create():
        jobs = [DiagnosticJob(owner=batch.owner, batch=batch, prompt=f"item {n}") for n in range(good)]
        jobs += [DiagnosticJob(owner=batch.owner, batch=batch, status=JobStatus.FAILED,
                               error_code="invalid_input", error_message=f"row {n + 2}: bad value")
                 for n in range(bad)]
        return jobs
    return create


def test_items_are_created_in_bulk_and_only_the_valid_ones_queued(batch, sent):
    result = batch_ingest(batch_id=batch.pk, read=lambda b: BatchItems(
        create=_items(b, 3, 1), errors=["row 2: bad value"], warnings=["column x ignored"],
        options={"ingest": {"rows": 4}}))
    row = Batch.objects.get(pk=batch.pk)
    assert result == "parsed" and row.status == Batch.Status.RUNNING and row.item_total == 4
    assert row.errors == ["row 2: bad value"] and row.warnings == ["column x ignored"]
    assert row.options["ingest"] == {"rows": 4} and row.parse_lease_expires_at is None
    queued = DiagnosticJob.objects.filter(batch=batch, status=JobStatus.QUEUED)
    assert sorted(sent) == sorted(str(j.pk) for j in queued) and len(sent) == 3
    assert all(j.enqueued_at is not None for j in queued)


def test_a_batch_whose_items_all_failed_is_done_and_one_with_no_item_failed(batch, make_user, sent):
    assert batch_ingest(batch_id=batch.pk, read=lambda b: BatchItems(create=_items(b, 0, 2))) == "parsed"
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.DONE and sent == []
    empty = Batch.objects.create(owner=batch.owner, app="finance", kind="core.diagnostic",
                                 original_filename="e.csv")
    batch_ingest(batch_id=empty.pk, read=lambda b: BatchItems(create=list))
    row = Batch.objects.get(pk=empty.pk)
    assert row.status == Batch.Status.FAILED and row.errors == ["e.csv: no items found in it"]


def test_a_rejected_file_fails_with_the_reader_s_errors(batch):
    def read(b):
        raise BatchRejected(["people.csv: no column named 'age'"])

    assert batch_ingest(batch_id=batch.pk, read=read) == "failed"
    row = Batch.objects.get(pk=batch.pk)
    assert row.status == Batch.Status.FAILED and row.errors == ["people.csv: no column named 'age'"]


def test_a_reader_that_crashes_fails_the_batch_alone_and_stores_nothing(batch):
    def read(b):
        return BatchItems(create=lambda: [*_items(b, 2, 0)(), 1 / 0])

    assert batch_ingest(batch_id=batch.pk, read=read) == "failed"
    row = Batch.objects.get(pk=batch.pk)
    assert (row.status == Batch.Status.FAILED and "ZeroDivisionError" in row.errors[0]
            and "people.csv" in row.errors[0])
    assert not DiagnosticJob.objects.filter(batch=batch).exists()  # the half-made items were rolled back
    assert batch_ingest(batch_id=batch.pk, read=read) == "skipped"  # a redelivery does not read it again


def test_a_dropped_database_connection_is_raised_for_the_sweeper_to_retry(batch):
    def read(b):
        raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError):
        batch_ingest(batch_id=batch.pk, read=read)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.PARSING


def test_a_file_that_keeps_killing_its_reader_is_given_up_after_the_attempts_cap(batch, settings):
    from django.utils import timezone

    settings.JOB_MAX_ATTEMPTS = 2
    calls = []
    Batch.objects.filter(pk=batch.pk).update(attempts=2, status=Batch.Status.PARSING,
                                             parse_lease_expires_at=timezone.now())  # two readers died
    assert batch_ingest(batch_id=batch.pk, read=lambda b: calls.append(b)) == "failed"
    row = Batch.objects.get(pk=batch.pk)
    assert calls == [] and row.status == Batch.Status.FAILED and "after 2 attempts" in row.errors[0]
