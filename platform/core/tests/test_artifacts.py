"""The one signed model-artifact format and cache (``core.artifacts``)."""
import pytest

from core.artifacts import (
    ArtifactCache,
    ArtifactError,
    artifact_header,
    artifact_pack,
    artifact_unpack,
    is_artifact,
)
from core.signing import ArtifactSignatureError


class Model:
    def __init__(self, weights):
        self.weights = weights


def test_a_packed_model_round_trips_with_a_readable_header():
    blob = artifact_pack(Model([1, 2, 3]), kind="test.model", metadata={"auc": 0.8})
    assert is_artifact(blob)
    header = artifact_header(blob)
    assert (header["kind"] == "test.model" and header["metadata"] == {"auc": 0.8}
            and header["format_version"] == 1)
    assert artifact_unpack(blob, kind="test.model").weights == [1, 2, 3]


def test_a_changed_byte_or_another_kind_is_refused_before_unpickling():
    blob = artifact_pack(Model([1]), kind="test.model")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ArtifactSignatureError):
        artifact_unpack(tampered, kind="test.model", name="v1.bin")
    with pytest.raises(ArtifactError, match="holds a 'test.model' model, not 'other.model'"):
        artifact_unpack(blob, kind="other.model")


def test_an_artifact_signed_with_a_retired_key_still_loads_during_a_rotation(settings):
    blob = artifact_pack(Model([4]), kind="test.model")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert artifact_unpack(blob, kind="test.model").weights == [4]
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(ArtifactSignatureError):
        artifact_unpack(blob, kind="test.model")


def test_the_cache_loads_once_and_drops_the_least_recently_used():
    cache = ArtifactCache(size=2)
    loads = []

    def loader(key):
        return lambda: loads.append(key) or key

    assert cache.get("a", loader("a")) == "a" and cache.get("a", loader("a")) == "a"
    cache.get("b", loader("b"))
    cache.get("a", loader("a"))
    cache.get("c", loader("c"))  # drops b, the least recently used
    cache.get("b", loader("b"))
    assert loads == ["a", "b", "c", "b"]
