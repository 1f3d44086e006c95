"""Signed model artifacts: a changed or unsigned file is refused before anything unpickles it; a key
rotation keeps old artifacts readable through SECRET_KEY_FALLBACKS."""
import pytest

from core.signing import (
    ArtifactSignatureError,
    artifact_sign,
    artifact_signed_with_current_key,
    artifact_verify,
)

OLD_KEY = "old-key-" + "a1B2c3D4" * 8
NEW_KEY = "new-key-" + "e5F6g7H8" * 8


def test_round_trip_and_tampering(settings):
    settings.SECRET_KEY = NEW_KEY
    blob = artifact_sign(b"model bytes")
    assert artifact_verify(blob, name="m.mfm") == b"model bytes"
    assert artifact_signed_with_current_key(blob)
    changed = blob[:-1] + b"X"
    with pytest.raises(ArtifactSignatureError, match="m.mfm: signature does not match"):
        artifact_verify(changed, name="m.mfm")
    with pytest.raises(ArtifactSignatureError, match="not a signed model artifact"):
        artifact_verify(b"\x80\x04 a bare pickle", name="m.mfm")


def test_rotation_reads_old_artifacts_only_while_the_old_key_is_a_fallback(settings):
    settings.SECRET_KEY = OLD_KEY
    old_blob = artifact_sign(b"trained before the rotation")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert artifact_verify(old_blob) == b"trained before the rotation"
    assert not artifact_signed_with_current_key(old_blob)
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(ArtifactSignatureError, match="neither SECRET_KEY nor in SECRET_KEY_FALLBACKS"):
        artifact_verify(old_blob)
