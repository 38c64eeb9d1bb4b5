#!/usr/bin/env python3
"""`moe serve` driven by the official `openai` Python client (and raw HTTP for what a client
library would refuse to send): completions and chat, streamed and not, usage, stop strings,
16 concurrent streaming clients against serial runs and against `moe run`, cancellation by
disconnect, every malformed request class with its status while the server keeps serving, the
503 while loading, and a clean exit on SIGTERM and SIGINT.

usage: openai_client_test.py MOE_BINARY MODEL_DIR
Prints "openai client tests: ok" and exits 0 when every check passes.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import openai
from openai import OpenAI

MOE, MODEL = sys.argv[1], sys.argv[2]
KEY = "sk-moe-test"
NAME = "tiny-serve"
DEADLINE = 60  # seconds any single wait may take
SERVERS = []  # killed on the way out, whatever happens


def start_server(*extra, key=KEY):
    args = [MOE, "serve", "--model", MODEL, "--port", "0", "--served-model-name", NAME, "--threads", "1",
            "--max-seqs", "8", "--ctx-size", "4096", "--max-body", "64K", *extra]
    if key:
        args += ["--api-key", key]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    SERVERS.append(proc)
    lines = []
    port = None
    t0 = time.time()
    while port is None:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"moe serve exited before listening: {''.join(lines)}")
        lines.append(line)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
        if time.time() - t0 > DEADLINE:
            raise SystemExit("moe serve did not start listening")
    # Keep draining stderr so the server never blocks on a full pipe.
    log = []
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    return proc, port, log


def raw(port, method, path, body=None, headers=None, key=KEY):
    """(status, parsed JSON or text) of one HTTP request."""
    data = body if isinstance(body, (bytes, type(None))) else body.encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=DEADLINE) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_healthy(port):
    t0 = time.time()
    while time.time() - t0 < DEADLINE:
        status, _ = raw(port, "GET", "/health")
        if status == 200:
            return
        time.sleep(0.05)
    raise SystemExit("the server never became healthy")


def metric(port, name):
    _, text = raw(port, "GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"  ok: {what}")


def main():
    # ---- 503 while loading, then ready --------------------------------------------------------
    proc, port, log = start_server("--startup-delay", "2")
    status, body = raw(port, "GET", "/health")
    check(status == 503 and "loading" in body["error"]["message"], "GET /health is 503 while the model loads")
    status, body = raw(port, "POST", "/v1/completions", json.dumps({"prompt": "hi"}))
    check(status == 503, "a completion while loading is 503")
    wait_healthy(port)
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=DEADLINE)

    # ---- models ------------------------------------------------------------------------------
    models = client.models.list()
    check([m.id for m in models.data] == [NAME], "GET /v1/models lists the served model")

    # ---- completions: the same text as `moe run` (greedy) --------------------------------------
    prompt = "Once upon a time"
    run = subprocess.run([MOE, "run", "--model", MODEL, "--prompt", prompt, "-n", "24", "--ignore-eos",
                          "--threads", "1"], capture_output=True, text=True, check=True)
    want = run.stdout[:-1]  # moe run ends the text with a newline
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=24, temperature=0,
                                  extra_body={"ignore_eos": True})
    check(r.choices[0].text == want, "a greedy completion equals `moe run`'s text")
    check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 24, "finish_reason length, usage")
    prompt_ids = raw(port, "POST", "/tokenize", json.dumps({"prompt": prompt}))[1]["tokens"]
    check(r.usage.prompt_tokens == len(prompt_ids), "usage.prompt_tokens counts the prompt as /tokenize does")
    detok = raw(port, "POST", "/detokenize", json.dumps({"tokens": prompt_ids}))[1]["prompt"]
    check(prompt in detok, "/detokenize inverts /tokenize")

    # Streamed: the pieces concatenate to the same text; the usage chunk comes last.
    pieces, usage, finish = [], None, None
    for chunk in client.completions.create(model=NAME, prompt=prompt, max_tokens=24, temperature=0, stream=True,
                                           stream_options={"include_usage": True},
                                           extra_body={"ignore_eos": True}):
        if chunk.usage:
            usage = chunk.usage
            check(chunk.choices == [], "the usage chunk has no choices")
        for c in chunk.choices:
            pieces.append(c.text)
            finish = c.finish_reason or finish
    check("".join(pieces) == want, "a streamed completion concatenates to the same text")
    check(usage is not None and usage.completion_tokens == 24 and finish == "length", "stream usage and finish")

    # Token-id prompts and echo.
    r = client.completions.create(model=NAME, prompt=prompt_ids, max_tokens=24, temperature=0,
                                  extra_body={"ignore_eos": True})
    check(r.choices[0].text == want, "a token-id prompt gives the same text")
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=4, temperature=0, echo=True)
    check(r.choices[0].text.startswith(prompt), "echo puts the prompt first")

    # Stop strings: the text ends right before the first one, finish_reason stop.
    stop = want[10:13]
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=24, temperature=0, stop=[stop],
                                  extra_body={"ignore_eos": True})
    check(r.choices[0].text == want[:want.index(stop)] and r.choices[0].finish_reason == "stop",
          f"stop string {stop!r} ends the text before it")
    pieces = [c.choices[0].text for c in client.completions.create(
        model=NAME, prompt=prompt, max_tokens=24, temperature=0, stop=[stop], stream=True,
        extra_body={"ignore_eos": True}) if c.choices]
    check("".join(pieces) == want[:want.index(stop)], "a streamed stop string is never sent")

    # Seeded sampling is reproducible; n choices.
    a = client.completions.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0.9, top_p=0.95, seed=7)
    b = client.completions.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0.9, top_p=0.95, seed=7)
    check(a.choices[0].text == b.choices[0].text, "the same seed gives the same sample")
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=6, temperature=0, n=3)
    check(len(r.choices) == 3 and len({c.text for c in r.choices}) == 1, "n=3 greedy choices")

    # ---- chat --------------------------------------------------------------------------------
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}]
    whole = client.chat.completions.create(model=NAME, messages=messages, max_tokens=20, temperature=0)
    check(whole.choices[0].message.role == "assistant" and whole.object == "chat.completion", "chat completion")
    roles, pieces, usage = [], [], None
    for chunk in client.chat.completions.create(model=NAME, messages=messages, max_tokens=20, temperature=0,
                                                stream=True, stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            if c.delta.content:
                pieces.append(c.delta.content)
    check("".join(pieces) == whole.choices[0].message.content, "a streamed chat reply equals the whole one")
    check(roles == ["assistant"] and usage.prompt_tokens == whole.usage.prompt_tokens, "chat stream role and usage")
    rendered = raw(port, "POST", "/tokenize", json.dumps({"messages": messages}))[1]
    check(rendered["count"] == whole.usage.prompt_tokens, "the chat template renders as /tokenize says")

    # ---- 16 concurrent streaming clients: the same text as serial runs -----------------------
    prompts = [f"Story number {i}: the {['cat', 'dog', 'ship', 'moon'][i % 4]} " * (1 + i % 3) for i in range(16)]
    serial = [client.completions.create(model=NAME, prompt=p, max_tokens=20 + i, temperature=0,
                                        extra_body={"ignore_eos": True}).choices[0].text
              for i, p in enumerate(prompts)]
    results = [None] * 16
    errors = []

    def stream(i):
        try:
            c = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=DEADLINE)
            text = ""
            for chunk in c.completions.create(model=NAME, prompt=prompts[i], max_tokens=20 + i, temperature=0,
                                              stream=True, extra_body={"ignore_eos": True}):
                for ch in chunk.choices:
                    text += ch.text
            results[i] = text
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(16)]
    # The counters of the requests before may still move after their responses ended (the engine
    # counts a step after handing out its tokens): read them once they stand still (at most 5 s).
    settle = time.time() + 5
    steps_before, tokens_before = None, None
    while time.time() < settle:
        now = (metric(port, "moe_engine_steps_total"), metric(port, "moe_generation_tokens_total"))
        if now == (steps_before, tokens_before):
            break
        steps_before, tokens_before = now
        time.sleep(0.2)
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    check(not errors, f"16 concurrent streams finish without errors {errors}")
    check(results == serial, "16 concurrent streaming clients get the serial runs' text")
    steps = metric(port, "moe_engine_steps_total") - steps_before
    tokens = metric(port, "moe_generation_tokens_total") - tokens_before
    check(tokens == sum(20 + i for i in range(16)) and steps < 0.75 * tokens,
          f"they were batched: {tokens:.0f} tokens in {steps:.0f} steps")

    # ---- cancellation: a client that disconnects ends its generation --------------------------
    cancelled_before = metric(port, 'moe_request_success_total{finished_reason="cancelled"}')
    # 4000 tokens take seconds even on the tiny model: the disconnect is seen long before the end.
    s = client.completions.create(model=NAME, prompt=prompt, max_tokens=4000, temperature=0, stream=True,
                                  extra_body={"ignore_eos": True})
    for i, _ in enumerate(s):
        if i == 3:
            break
    s.close()
    t0 = time.time()
    while time.time() - t0 < 10 and metric(port, "moe_num_requests_running") > 0:
        time.sleep(0.05)
    check(metric(port, "moe_num_requests_running") == 0 and metric(port, "moe_kv_cache_blocks_used") == 0,
          "a closed stream stops its generation and frees its KV blocks")
    check(metric(port, 'moe_request_success_total{finished_reason="cancelled"}') == cancelled_before + 1,
          "the disconnect is counted as a cancellation")
    # A non-streaming request whose client gives up is cancelled too.
    impatient = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=0.3)
    try:
        impatient.completions.create(model=NAME, prompt=prompt, max_tokens=4000, temperature=0,
                                     extra_body={"ignore_eos": True})
    except openai.APITimeoutError:
        pass
    t0 = time.time()
    while time.time() - t0 < 10 and metric(port, "moe_num_requests_running") > 0:
        time.sleep(0.05)
    check(metric(port, "moe_num_requests_running") == 0, "a non-streaming client that times out is cancelled")

    # ---- malformed requests: the right status, and the server keeps serving -------------------
    def still_serving():
        r = client.completions.create(model=NAME, prompt=prompt, max_tokens=24, temperature=0,
                                      extra_body={"ignore_eos": True})
        return r.choices[0].text == want

    cases = [
        ("malformed JSON", "POST", "/v1/completions", "{\"prompt\": ", {}, KEY, 400),
        ("a body that is not an object", "POST", "/v1/completions", "[1, 2]", {}, KEY, 400),
        ("temperature out of range", "POST", "/v1/completions",
         json.dumps({"prompt": "x", "temperature": 7}), {}, KEY, 400),
        ("max_tokens beyond the context", "POST", "/v1/completions",
         json.dumps({"prompt": "x", "max_tokens": 100000}), {}, KEY, 400),
        ("n above --max-n", "POST", "/v1/completions",
         json.dumps({"prompt": "x", "n": 9}), {}, KEY, 400),
        ("a token id outside the vocabulary", "POST", "/v1/completions",
         json.dumps({"prompt": [1, 2, 10 ** 9]}), {}, KEY, 400),
        ("messages missing", "POST", "/v1/chat/completions", json.dumps({"model": NAME}), {}, KEY, 400),
        ("a bad message role", "POST", "/v1/chat/completions",
         json.dumps({"messages": [{"role": "robot", "content": "x"}]}), {}, KEY, 400),
        ("nesting 60000 deep", "POST", "/v1/completions", "[" * 60000, {}, KEY, 400),
        ("no API key", "POST", "/v1/completions", json.dumps({"prompt": "x"}), {}, None, 401),
        ("a wrong API key", "POST", "/v1/completions", json.dumps({"prompt": "x"}), {}, "sk-wrong", 401),
        ("an unknown model", "POST", "/v1/completions", json.dumps({"model": "gpt-9", "prompt": "x"}), {}, KEY, 404),
        ("an unknown route", "POST", "/v1/embeddings", json.dumps({"input": "x"}), {}, KEY, 404),
        ("a body over --max-body", "POST", "/v1/completions",
         json.dumps({"prompt": "x" * 70000}), {}, KEY, 413),
    ]
    for what, method, path, body, headers, key, want_status in cases:
        status, reply = raw(port, method, path, body, headers, key)
        check(status == want_status and isinstance(reply, dict) and reply["error"]["message"],
              f"{what}: {want_status} ({reply['error']['message'][:70] if isinstance(reply, dict) else reply!r})")
        check(still_serving(), f"  and the server still serves after {what}")
    try:
        client.completions.create(model="gpt-9", prompt="x")
        check(False, "the openai client raises NotFoundError for an unknown model")
    except openai.NotFoundError:
        check(True, "the openai client raises NotFoundError for an unknown model")
    try:
        client.completions.create(model=NAME, prompt="x", temperature=9)
        check(False, "the openai client raises BadRequestError")
    except openai.BadRequestError:
        check(True, "the openai client raises BadRequestError")
    check(raw(port, "GET", "/health", key=None)[0] == 200, "/health needs no key")
    _, text = raw(port, "GET", "/metrics", key=None)
    for name in ["moe_num_requests_running", "moe_num_requests_waiting", "moe_prompt_tokens_total",
                 "moe_generation_tokens_total", "moe_time_to_first_token_seconds_bucket",
                 "moe_inter_token_latency_seconds_bucket", "moe_kv_cache_usage_perc"]:
        check(name in text, f"/metrics has {name}")

    # ---- SIGTERM with a stream in flight: the stream ends, the process exits 0 -----------------
    s = client.completions.create(model=NAME, prompt=prompt, max_tokens=4000, temperature=0, stream=True,
                                  extra_body={"ignore_eos": True})
    got = 0
    ended_with = None
    try:
        for _ in s:
            got += 1
            if got == 3:
                proc.send_signal(signal.SIGTERM)
    except openai.APIError as e:  # the stream's last event: an error saying why it ended
        ended_with = str(e)
    code = proc.wait(timeout=15)
    check(ended_with and "shutting down" in ended_with and got < 4000,
          f"SIGTERM ends a running stream with an error event ({ended_with})")
    check(code == 0, f"SIGTERM: the server exits 0 (exit {code})")

    # ---- SIGINT on an idle server ---------------------------------------------------------------
    proc, port, log = start_server(key=None)
    wait_healthy(port)
    proc.send_signal(signal.SIGINT)
    check(proc.wait(timeout=15) == 0, "SIGINT: the server exits 0")
    print("openai client tests: ok")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in SERVERS:
            if p.poll() is None:
                p.kill()
