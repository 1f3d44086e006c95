"""Scorecard artifacts move to the platform's one signed format (core.artifacts, kind "finance.scorecard").

Rows written before hold unsigned joblib bytes (``scorecard.dump``): each is read with the old
``scorecard.load`` (these bytes were written by this platform, before signing existed) and packed
again as a signed artifact with the current SECRET_KEY. Rows already signed are left alone; a row
whose bytes cannot be read is left as it is and reported: its jobs will fail with
``model_artifact_refused`` until the version is retrained. Reversible (back to ``scorecard.dump``).
"""
import logging

from django.db import migrations, models

logger = logging.getLogger(__name__)


def sign_scorecard_artifacts(apps, schema_editor):
    from apps.finance.scorecard import ModelFormatError
    from apps.finance.services.credit_models import scorecard_artifact_upgrade

    Version = apps.get_model("finance", "CreditModelVersion")
    for pk, number, sha in Version.objects.order_by("pk").values_list("pk", "version", "data_sha256"):
        blob = Version.objects.filter(pk=pk).values_list("artifact", flat=True).first()
        try:
            signed = scorecard_artifact_upgrade(bytes(blob or b""),
                                                metadata={"version": number, "data_sha256": sha})
        except ModelFormatError as exc:
            logger.warning("scorecard v%s: artifact left unsigned, retrain this version (%s)", number, exc)
            continue
        if signed is not None:
            Version.objects.filter(pk=pk).update(artifact=signed)


def unsign_scorecard_artifacts(apps, schema_editor):
    from apps.finance import scorecard
    from apps.finance.services.credit_models import scorecard_artifact_unpack
    from core.artifacts import ArtifactError, is_artifact
    from core.signing import ArtifactSignatureError

    Version = apps.get_model("finance", "CreditModelVersion")
    for pk, number in Version.objects.order_by("pk").values_list("pk", "version"):
        blob = bytes(Version.objects.filter(pk=pk).values_list("artifact", flat=True).first() or b"")
        if not blob or not is_artifact(blob):
            continue
        try:
            trained = scorecard_artifact_unpack(blob, name=f"scorecard v{number}")
        except (ArtifactSignatureError, ArtifactError) as exc:
            logger.warning("scorecard v%s: artifact left signed (%s)", number, exc)
            continue
        Version.objects.filter(pk=pk).update(artifact=scorecard.dump(trained))


class Migration(migrations.Migration):

    dependencies = [
        ('finance', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='creditmodelversion',
            name='artifact',
            field=models.BinaryField(help_text='The trained scorecard as a signed model artifact '
                                               '(core.artifacts, kind finance.scorecard).'),
        ),
        migrations.RunPython(sign_scorecard_artifacts, unsign_scorecard_artifacts),
    ]
