import builtins

import pytest


@pytest.fixture
def without_faiss(monkeypatch):
    """``import faiss`` fails, as where the scale extra is not installed."""
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
