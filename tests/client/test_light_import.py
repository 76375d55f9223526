"""``pip install 'xalign[client]'`` is enough: importing the client loads none of the server's modules."""

from __future__ import annotations

import subprocess
import sys

SERVER_MODULES = ("fastapi", "starlette", "uvicorn", "onnxruntime", "faiss", "tokenizers", "torch", "xalign.service")


def test_the_client_imports_nothing_of_the_server() -> None:
    script = (
        "import sys, xalign.client\n"
        f"loaded = [m for m in {SERVER_MODULES!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
        "assert 'httpx' in sys.modules and 'pydantic' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
