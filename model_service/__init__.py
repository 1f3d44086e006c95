"""OpenAI-compatible LLM model service (torch + transformers + xgrammar).

Start it with ``python -m model_service``; see ``docs/model_service.md``.
This package never imports Django or anything from the platform.
"""

__version__ = "0.1.0"
